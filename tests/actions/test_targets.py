"""Suspicious links are read from the links check's findings, and only from those."""

from __future__ import annotations

from milter.actions.targets import LinkTargets, targets_from_findings
from milter.model.findings import Finding, LinkRef, LinkScope, Severity


def finding(code: str, link: LinkRef | None = None) -> Finding:
    return Finding(code, "links", Severity.HIGH, code, None, {}, link)


def test_hosts_and_urls_come_from_each_code_s_evidence() -> None:
    targets = targets_from_findings(
        [
            finding(
                "LINK_LOOKALIKE", LinkRef("https://r.example/?u=x", "améli.fr", "xn--amli-cpa.fr")
            ),
            finding("LINK_TEXT_MISMATCH", LinkRef("https://t.example/c", "Evil.Example.")),
            finding(
                "LINK_TRICK",
                LinkRef("https://ameli.fr@198.51.100.7/", "198.51.100.7", scope=LinkScope.URL),
            ),
            finding("FROM_LOOKALIKE"),
            finding("DISPLAY_NAME_BRAND"),
        ]
    )
    assert targets.hosts == {"améli.fr", "xn--amli-cpa.fr", "evil.example"}
    assert targets.urls == {
        "https://r.example/?u=x",
        "https://t.example/c",
        "https://ameli.fr@198.51.100.7/",
    }
    assert not targets.host_matches("www.ameli.fr")  # the host the lure *shows* is official
    assert not targets.host_matches("ameli-info.fr")  # a From domain is not a link
    assert targets.url_matches("https://ameli.fr@198.51.100.7/")
    assert not targets.url_matches("https://198.51.100.7/other")  # tricks: that URL only
    assert targets.url_matches("https://t.example/c).")  # trailing punctuation of text


def test_nothing_suspicious_is_empty_and_defanged_hosts_are_ignored() -> None:
    assert not targets_from_findings([finding("URGENCY")])
    defanged = targets_from_findings([finding("LINK_LOOKALIKE", LinkRef("", "evil[.]example"))])
    assert not defanged


def test_every_link_mode_matches_any_link_but_the_warning_page() -> None:
    targets = LinkTargets.of().with_every_link().keeping("https://warn.example/r")
    assert targets
    assert targets.url_matches("https://tracker.example/c?id=1")
    assert not targets.url_matches("https://warn.example/r?u=abc&s=def")


def test_keeping_protects_the_warning_page() -> None:
    targets = LinkTargets.of(hosts=["warn.example"]).keeping("https://warn.example/r")
    assert not targets.url_matches("https://warn.example/r?u=abc&s=def")
    assert targets.url_matches("https://warn.example/other")

"""One URL parser for detection, rewriting and display, with browser (WHATWG) semantics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milter.actions.targets import LinkTargets
from milter.links import extract_links
from milter.text.url import LinkFlag, defang_url, host_of, parse_url

_DATA = json.loads((Path(__file__).parent / "data" / "whatwg_url_hosts.json").read_text())


@pytest.mark.parametrize("case", _DATA["cases"], ids=lambda c: repr(c["input"])[:60])
def test_whatwg_url_test_data_hosts(case: dict[str, object]) -> None:
    base = "" if case["base"] == "about:blank" else str(case["base"])
    parsed = parse_url(str(case["input"]), base)
    if case.get("failure"):
        assert LinkFlag.INVALID in parsed.flags, parsed
    else:
        assert LinkFlag.INVALID not in parsed.flags, parsed
        assert parsed.host_ascii == case["hostname"]


# (written URL, host a browser contacts)
_TRICKS = [
    ("https:\\\\x.fr\\", "x.fr"),
    ("https://ameli.fr\\@evil.fr/", "ameli.fr"),
    ("https://evil.fr%2F@ameli.fr/", "ameli.fr"),
    ("https://ameli.fr%2F@evil.fr/", "evil.fr"),
    ("https://ameli.fr@evil.fr/", "evil.fr"),
    ("HTTPS:/\\evil.fr/ameli.fr", "evil.fr"),
    ("https://evil.fr#@ameli.fr", "evil.fr"),
    ("https://evil.fr?@ameli.fr", "evil.fr"),
]


@pytest.mark.parametrize(("url", "host"), _TRICKS)
def test_detector_rewriter_and_display_read_the_same_host(url: str, host: str) -> None:
    assert parse_url(url).host == host
    assert host_of(url) == host
    links = extract_links([], [f'<a href="{url}">x</a>'])
    assert [link.host for link in links] == [host]
    # the rewriter neutralises exactly the links whose host the detector named
    assert LinkTargets.of([host]).url_matches(url)
    assert not LinkTargets.of(["other.example"]).url_matches(url)
    # the defanged form shows the host as bracketed, and no longer parses as a live URL
    shown = defang_url(url)
    assert host.replace(".", "[.]") in shown
    assert parse_url(shown).scheme not in ("http", "https")


def test_percent_encoded_slash_in_host_is_invalid_but_still_judged() -> None:
    parsed = parse_url("https://ameli.fr%2F.evil.fr/")
    assert LinkFlag.INVALID in parsed.flags
    assert LinkFlag.ENCODED_HOST in parsed.flags
    assert parsed.host == "ameli.fr/.evil.fr"


def test_defang_keeps_userinfo_and_is_idempotent() -> None:
    assert defang_url("http://u.v@www.evil.fr:8080/") == "hxxp://u.v@www[.]evil[.]fr:8080/"
    once = defang_url("https:\\\\x.fr\\a.b")
    assert once == "hxxps:\\\\x[.]fr\\a.b"
    assert defang_url(once) == once
    assert defang_url("mailto:a@b.fr?subject=x.y") == "mailto:a@b[.]fr?subject=x.y"

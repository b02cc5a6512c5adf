"""The links check judges most links without unwrapping them (``may_carry`` says they
carry no other URL, no reading is built, no finding list): its findings are those of
judging every link in full, link by link and in the same order (the first MAX_FINDINGS
of each code, the ones the check keeps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.harness.corpus import generate
from milter.checks import links as links_check
from milter.checks.base import CheckContext
from milter.checks.claim import find_claim
from milter.links.extract import Link, LinkFlag, extract_links
from milter.links.redirect import unwrap
from milter.mime.parse import parse_message
from milter.model.envelope import Envelope
from milter.model.findings import Finding
from milter.policy.loader import load_policy
from milter.policy.model import Policy


def _in_full(judge: links_check._Judge, link: Link) -> list[Finding]:
    """Every link unwrapped and every host classified (no shortcut)."""
    index, found = judge.index, []
    chain = unwrap(link.target, parsed=link.parsed) if link.host else None
    behind = chain.final.host if chain is not None and len(chain.chain) > 1 else ""
    for host, via in ((link.host, ""), (behind, " (behind a redirector)")):
        hit = index.classify(host) if host else None
        if hit is not None and hit.is_lookalike:
            found.append(judge._lookalike(link, hit, via))
    shown = index.classify(link.anchor_host) if link.anchor_host else None
    real = behind or link.host
    if (
        LinkFlag.ANCHOR_MISMATCH in link.flags
        and shown is not None
        and not shown.is_lookalike
        and links_check._not_brand(index, real, shown)
    ):
        found.append(judge._mismatch(link, shown, real))
    tricks = sorted(str(f) for f in link.flags if f in links_check.TRICKS)
    if tricks:
        found.append(judge._trick(link, tricks))
    return found


def _same(raw: bytes, policy: Policy) -> int:
    mime = parse_message(raw)
    ctx = CheckContext(Envelope(), mime, policy, find_claim(mime, policy), None)
    judge = links_check._Judge(ctx, ctx.compiled.brand_index)
    count = 0
    links = extract_links(mime.texts, mime.htmls)
    in_full: list[Finding] = []
    for link in links:
        found = judge.link(link)
        assert list(found) == _in_full(judge, link), link
        count += len(found)
        in_full += found
    # the links passed over have nothing to say; of each code, the first MAX_FINDINGS
    assert judge.links(links) == links_check._bounded(in_full)
    return count


_HREFS = st.sampled_from(
    [
        "https://click.lettre.fr/l/1?u=a&utm_source=x",
        "https://ameli-remboursement.fr/x",
        "https://www.ameli.fr/assure",
        "https://www.google.fr/url?q=https://ameli-remboursement.fr/x",
        "http://www.google.fr/url?q=https://ameli-remboursement.fr/x",
        "HTTP://t.fr/c?u=http://ameli-remboursement.fr/",
        "https://t.fr/c?u=https://www.ameli.fr/",
        "https://t.fr/r/https%3A%2F%2Fameli-remboursement.fr",
        "https://ameli.fr@evil.example/",
        "http://0x7f.1/a",
        "https://xn--amli-bpa.fr/",
        "mailto:contact@ameli-remboursement.fr",
        "javascript:void(0)",
        "data:text/html,x",
        "/relative",
        "https://evil.example/\u202ecod.exe",
    ]
)
_ANCHORS = st.sampled_from(["", "Lire la suite", "ameli.fr", "https://www.ameli.fr", "x.fr/a"])
_HEADERS = st.sampled_from(
    [
        "From: Jean <jean@example.org>\r\n",
        "From: Assurance Maladie <info@example.org>\r\n",
        "From: Jean <jean@example.org>\r\nList-Unsubscribe: <mailto:u@example.org>\r\n",
        "From: Ameli <contact@ameli.fr>\r\n",
    ]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_HEADERS, st.lists(st.tuples(_HREFS, _ANCHORS), min_size=1, max_size=6))
def test_each_link_judged_as_in_full(
    policy: Policy, headers: str, pairs: list[tuple[str, str]]
) -> None:
    body = "".join(f'<a href="{href}">{anchor}</a> ' for href, anchor in pairs)
    raw = f"{headers}Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}"
    _same(raw.encode(), policy)


@pytest.mark.parametrize(
    "href",
    [
        "http://www.google.fr/url?q=https://ameli-remboursement.fr/x",
        "HTTP://www.google.fr/url?q=https://ameli-remboursement.fr/x",
        "https://www.google.fr/url?q=https://ameli-remboursement.fr/x",
    ],
)
async def test_a_lookalike_behind_a_redirector_is_found_whatever_the_scheme(
    policy: Policy, href: str
) -> None:
    """A redirector reached over plain http (any case) is unwrapped like an https one:
    its destination's lookalike host is a finding (a shortcut that skipped http links
    would lose it)."""
    raw = (
        "From: Jean <jean@example.org>\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
        f'<a href="{href}">ici</a>'
    ).encode()
    mime = parse_message(raw)
    ctx = CheckContext(Envelope(), mime, policy, find_claim(mime, policy), None)
    found = await links_check.LinksCheck().run(ctx)
    hosts = [
        (f.evidence["host"], "redirector" in f.text)
        for f in found
        if isinstance(f, Finding) and f.code == "LINK_LOOKALIKE"
    ]
    assert hosts == [("ameli-remboursement.fr", True)]


def test_the_benchmark_corpus_judged_as_in_full(policy: Policy) -> None:
    found = sum(_same(message.raw, policy) for message in generate(60))
    assert found > 0  # the spoofs' lures and lookalikes are judged


async def test_a_policy_change_changes_the_judgement(policy: Policy, tmp_path: Path) -> None:
    """Nothing of one policy's judgement is reused under another (the lookalike answers
    are kept per compiled policy): a domain the admin declares the brand's own stops
    being a lookalike for the new policy, and stays one for the old."""
    (tmp_path / "brands.yaml").write_text(
        "brands:\n  ameli:\n    sending_domains: [ameli-news.example.fr]\n", encoding="utf-8"
    )
    extended = load_policy(tmp_path)
    raw = (
        b"From: Jean <jean@example.org>\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
        b'<a href="https://x.ameli-news.example.fr/a">ici</a>'
    )

    async def lookalikes(with_policy: Policy) -> list[str]:
        mime = parse_message(raw)
        ctx = CheckContext(Envelope(), mime, with_policy, find_claim(mime, with_policy), None)
        found = await links_check.LinksCheck().run(ctx)
        return [
            f.evidence["host"]
            for f in found
            if isinstance(f, Finding) and f.code == "LINK_LOOKALIKE"
        ]

    for _ in range(2):  # each judged again after the other
        assert await lookalikes(policy) == ["x.ameli-news.example.fr"]
        assert await lookalikes(extended) == []


def test_past_the_kept_findings_none_are_made_and_the_kept_ones_are_the_first(
    policy: Policy,
) -> None:
    """Of each code only the first MAX_FINDINGS findings are made (the check keeps no
    more), counted per code: a code that has its findings does not stop the others'
    (here the lookalikes have theirs long before the mismatches and tricks), and the
    findings kept are those of judging every link in full, then bounding."""
    cap = links_check.MAX_FINDINGS
    anchors = [f'<a href="https://ameli-remboursement.fr/{i}">ici</a>' for i in range(cap + 5)]
    for i in range(cap + 3):  # a mismatch, then a trick, then both in one link
        anchors.append(f'<a href="https://evil{i}.example/a">ameli.fr</a>')
        anchors.append(f'<a href="https://ameli.fr@evil{i}.example/b">ici</a>')
        anchors.append(f'<a href="https://x@evil{i}.example/c">impots.gouv.fr</a>')
    anchors.append('<a href="https://ameli-remboursement.fr/last">ici</a>')
    raw = (
        "From: Jean <jean@example.org>\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
        + " ".join(anchors)
    ).encode()
    mime = parse_message(raw)
    ctx = CheckContext(Envelope(), mime, policy, find_claim(mime, policy), None)
    judge = links_check._Judge(ctx, ctx.compiled.brand_index)
    links = extract_links(mime.texts, mime.htmls)
    in_full = [finding for link in links for finding in _in_full(judge, link)]
    found = judge.links(links)
    assert found == links_check._bounded(in_full)
    codes = [finding.code for finding in found]
    assert {code: codes.count(code) for code in codes} == dict.fromkeys(links_check.LINK_CODES, cap)
    assert len(in_full) > len(found)  # some were past the kept ones

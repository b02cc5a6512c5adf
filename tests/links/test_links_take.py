"""The extractor's sink keeps one link per absolute URL: the first occurrence, unless a
later one has an anchor text naming a host (then that one, flagged when the host's
registrable domain differs). Pinned on the cases the one-call ``_Sink.take`` inlines
(seen keys, readings, the kept link), and what the links check says of them: a URL
repeated with another anchor text still gives the finding its anchor gave before."""

from __future__ import annotations

import pytest

from milter.checks.base import CheckContext
from milter.checks.claim import find_claim
from milter.checks.links import LinksCheck
from milter.links.extract import Link, LinkFlag, extract_links
from milter.mime.parse import parse_message
from milter.model.envelope import Envelope
from milter.model.findings import Finding
from milter.policy.model import Policy

EVIL = "https://evil.example/x"


def _kept(text: str, html: str) -> list[tuple[str, str, str, bool]]:
    """(url, source, anchor, flagged) of each link kept."""
    return [
        (link.url, link.source, link.anchor, LinkFlag.ANCHOR_MISMATCH in link.flags)
        for link in extract_links([text] if text else [], [html] if html else [])
    ]


@pytest.mark.parametrize(
    ("text", "html", "kept"),
    [
        # the first occurrence is kept when no anchor names a host
        (
            "",
            f'<a href="{EVIL}">Lire</a><a href="{EVIL}">Voir</a>',
            [(EVIL, "html-href", "Lire", False)],
        ),
        (f"voir {EVIL} .", f'<a href="{EVIL}">Lire</a>', [(EVIL, "text", "", False)]),
        # a later anchor naming a host takes the place, flagged when it is another domain
        (
            f"voir {EVIL} .",
            f'<a href="{EVIL}">Lire</a><a href="{EVIL}">ameli.fr</a>',
            [(EVIL, "html-href", "ameli.fr", True)],
        ),
        # "evil.example" names no host (no public suffix): the later anchor is kept
        (
            "",
            f'<a href="{EVIL}">evil.example</a><a href="{EVIL}">ameli.fr</a>',
            [(EVIL, "html-href", "ameli.fr", True)],
        ),
        # the first anchor naming a host stays
        (
            "",
            f'<a href="{EVIL}">ameli.fr</a><a href="{EVIL}">impots.gouv.fr</a>',
            [(EVIL, "html-href", "ameli.fr", True)],
        ),
        # the same written URL read against another base is another link (and <base>
        # is one)
        (
            "",
            '<a href="/a">x</a><base href="https://base.example/d/"><a href="/a">x</a>',
            [
                ("/a", "html-href", "x", False),
                ("https://base.example/d/", "html-base", "", False),
                ("/a", "html-href", "x", False),
            ],
        ),
        # a scheme-less text URL is read as http; the same written as an href is relative
        (
            "voir www.x.fr/a .",
            '<a href="www.x.fr/a">www.x.fr/a</a>',
            [("www.x.fr/a", "text", "", False), ("www.x.fr/a", "html-href", "www.x.fr/a", False)],
        ),
        # an image and a link to the same URL: one link, the anchor's
        (
            "",
            f'<img src="{EVIL}"><a href="{EVIL}">ameli.fr</a>',
            [(EVIL, "html-href", "ameli.fr", True)],
        ),
    ],
)
def test_which_occurrence_is_kept(
    text: str, html: str, kept: list[tuple[str, str, str, bool]]
) -> None:
    assert _kept(text, html) == kept


def test_max_links_stops_at_a_new_url_only() -> None:
    html = "".join(
        f'<a href="https://x{i}.fr/">x</a><a href="https://x0.fr/">ameli.fr</a>' for i in range(5)
    )
    links = extract_links([], [html], max_links=3)
    assert links.truncated
    assert [link.url for link in links] == ["https://x0.fr/", "https://x1.fr/", "https://x2.fr/"]
    assert links.links[0].anchor == "ameli.fr"  # replaced in place, not a new link


async def _mismatches(policy: Policy, body: str) -> list[Finding]:
    raw = f"From: Jean <jean@example.org>\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n{body}"
    mime = parse_message(raw.encode())
    ctx = CheckContext(Envelope(), mime, policy, find_claim(mime, policy), None)
    found = await LinksCheck().run(ctx)
    return [f for f in found if isinstance(f, Finding) and f.code == "LINK_TEXT_MISMATCH"]


async def test_a_repeated_url_keeps_the_finding_of_its_anchor(policy: Policy) -> None:
    for body in (
        f'<a href="{EVIL}">Lire la suite</a> <a href="{EVIL}">ameli.fr</a>',
        f'<a href="{EVIL}">ameli.fr</a> <a href="{EVIL}">Lire la suite</a>',
        f'<a href="{EVIL}">ameli.fr</a> <a href="{EVIL}">ameli.fr</a>',
    ):
        found = await _mismatches(policy, body)
        assert [(f.evidence["shown"], f.evidence["href"]) for f in found] == [("ameli.fr", EVIL)]
    assert await _mismatches(policy, f'<a href="{EVIL}">Lire</a> <a href="{EVIL}">Voir</a>') == []


def test_link_is_one_tuple_per_link() -> None:
    (link,) = extract_links([], [f'<a href="{EVIL}">ameli.fr</a>'])
    assert type(link) is Link
    assert link.parsed.target == EVIL


@pytest.mark.parametrize(
    ("anchor", "anchor_host", "flagged"),
    [
        ("http://intranet/a", "intranet", True),  # a URL without a dot: ":" alone
        ("https://evil.example/", "evil.example", False),
        ("Lire la suite", "", False),  # no "." nor ":": read as naming no host
        ("x:y", "", False),
    ],
)
def test_an_anchor_text_names_a_host_with_a_dot_or_a_colon(
    anchor: str, anchor_host: str, flagged: bool
) -> None:
    (link,) = extract_links([], [f'<a href="https://evil.example/x">{anchor}</a>'])
    assert link.anchor_host == anchor_host
    assert (LinkFlag.ANCHOR_MISMATCH in link.flags) is flagged

"""The body's links are extracted once per scan and read alike by the claim and the links check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.checks import body_links
from milter.checks.body_links import BodyLinks
from milter.checks.claim import MAX_BODY_LINKS, find_claim
from milter.engine import scan
from milter.links import extract
from milter.links.extract import extract_links
from milter.mime.parse import MimeLimits, parse_message
from milter.model.budget import WorkBudgetExceeded
from milter.model.envelope import Envelope

HOSTS = ("ameli.fr", "ameli-remboursement.top", "exemple.fr", "a.b.example.com", "x.co")
ANCHORS = ("", "www.ameli.fr", "autre", "https://x.co/", "Cliquez ici")


def _message(text_links: list[str], html_links: list[tuple[str, str]] | list[str]) -> bytes:
    text = " ".join(f"https://{h}/p" for h in text_links)
    pairs = [(h, h) if isinstance(h, str) else h for h in html_links]
    html = "".join(f'<a href="https://{h}/p">{anchor}</a> ' for h, anchor in pairs)
    return (
        "From: Assurance Maladie <info@exemple.fr>\r\nTo: x@example.org\r\n"
        "Subject: Votre carte Vitale\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        f"--b\r\nContent-Type: text/html\r\n\r\n<p>{html}</p>\r\n--b--\r\n"
    ).encode()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(HOSTS), max_size=12),
    st.lists(st.tuples(st.sampled_from(HOSTS), st.sampled_from(ANCHORS)), max_size=12),
    st.lists(st.integers(1, 12), min_size=1, max_size=3),
)
def test_every_cap_reads_what_extract_links_gives_at_that_cap(
    text_links: list[str], html_links: list[tuple[str, str]], caps: list[int]
) -> None:
    """Whatever was asked before, each answer is extract_links' own (links, anchors,
    flags, truncation): the same URL is written in both parts, with and without anchors."""
    mime = parse_message(_message(text_links, html_links), MimeLimits())
    shared = BodyLinks(mime)
    for cap in caps:
        assert shared.get(cap) == extract_links(mime.texts, mime.htmls, max_links=cap)


async def test_a_claimed_message_has_its_links_extracted_once(policy, monkeypatch) -> None:
    calls: list[int] = []

    def counted(texts, htmls, max_links=2000):  # type: ignore[no-untyped-def]
        calls.append(max_links)
        return extract_links(texts, htmls, max_links=max_links)

    monkeypatch.setattr(body_links, "extract_links", counted)
    raw = _message(["ameli-remboursement.top"], ["ameli-remboursement.top", "x.co"])
    raw = raw.replace(b"Assurance Maladie <info@", b"<ameli@")  # claimed by the local part
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.brand == "ameli"
    assert result.mime is not None
    claim = find_claim(result.mime, policy)  # (outside the count: the scan is done)
    assert claim is not None
    assert claim.link_hosts == ("ameli-remboursement.top", "x.co")
    assert calls == [MAX_BODY_LINKS, MAX_BODY_LINKS]
    # one for the scan (the claim's, read again by the links check: it found every link),
    # one for the find_claim above


async def test_the_links_check_extracts_again_when_the_claims_links_were_cut(
    policy, monkeypatch
) -> None:
    """Past MAX_BODY_LINKS the claim's extraction is cut: the links check extracts its own
    at the policy's cap (under the scan's work budget)."""
    calls: list[int] = []

    def counted(texts, htmls, max_links=2000):  # type: ignore[no-untyped-def]
        calls.append(max_links)
        return extract_links(texts, htmls, max_links=max_links)

    monkeypatch.setattr(body_links, "extract_links", counted)
    many = [f"h{i}.ameli-remboursement.top" for i in range(MAX_BODY_LINKS + 5)]
    raw = _message(many, []).replace(b"Assurance Maladie <info@", b"<ameli@")
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.brand == "ameli"
    assert calls == [MAX_BODY_LINKS, policy.document.limits.max_links]


async def test_a_claim_out_of_work_budget_is_a_limit_finding(policy, monkeypatch) -> None:
    """The claim extracts links before the checks run: a body that makes that long stops
    at the work budget like the checks do, as a LIMIT_EXCEEDED finding, not a crash."""

    def spent(where: str) -> None:
        raise WorkBudgetExceeded(where)

    monkeypatch.setattr(extract, "checkpoint", spent)
    raw = _message(["ameli-remboursement.top"], []).replace(b"Assurance Maladie <info@", b"<ameli@")
    result = await scan(raw, Envelope(), policy)
    limits = [f for f in result.verdict.findings if f.code == "LIMIT_EXCEEDED"]
    assert ("claim", "work") in {(f.check, f.evidence["limit"]) for f in limits}

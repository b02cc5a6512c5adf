"""The body's links are extracted once per scan and read alike by the claim and the links check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.checks import body_links
from milter.checks.body_links import BodyLinks
from milter.checks.claim import find_claim
from milter.engine import scan
from milter.links.extract import extract_links
from milter.mime.parse import MimeLimits, parse_message
from milter.model.envelope import Envelope

HOSTS = ("ameli.fr", "ameli-remboursement.top", "exemple.fr", "a.b.example.com", "x.co")


def _message(text_links: list[str], html_links: list[str]) -> bytes:
    text = " ".join(f"https://{h}/p" for h in text_links)
    html = "".join(f'<a href="https://{h}/q">{h}</a> ' for h in html_links)
    return (
        "From: Assurance Maladie <info@exemple.fr>\r\nTo: x@example.org\r\n"
        "Subject: Votre carte Vitale\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        f"--b\r\nContent-Type: text/html\r\n\r\n<p>{html}</p>\r\n--b--\r\n"
    ).encode()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(HOSTS), max_size=12),
    st.lists(st.sampled_from(HOSTS), max_size=12),
    st.integers(1, 8),
    st.integers(1, 30),
)
def test_a_smaller_cap_reads_the_first_links_of_a_larger_one(
    text_links: list[str], html_links: list[str], small: int, large: int
) -> None:
    mime = parse_message(_message(text_links, html_links), MimeLimits())
    shared = BodyLinks(mime)
    first = shared.get(large)
    assert first == extract_links(mime.texts, mime.htmls, max_links=large)
    alone = extract_links(mime.texts, mime.htmls, max_links=small)
    got = shared.get(small)
    assert [link.target for link in got] == [link.target for link in alone]
    assert got.truncated == alone.truncated


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
    assert calls == [policy.document.limits.max_links, policy.document.limits.max_links]
    # one for the scan (claim and links check), one for the find_claim above

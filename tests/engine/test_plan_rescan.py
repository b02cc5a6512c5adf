"""Scan our own output again: one banner, one verdict header, links defanged only once."""

from __future__ import annotations

import base64
from dataclasses import replace
from email import message_from_bytes
from email.policy import compat32

from milter.actions.apply import apply_plan
from milter.actions.banner import HTML_START, PLAIN_START
from milter.engine import scan
from milter.engine.plan import plan
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition
from milter.policy.model import Policy
from tests.conftest import EXAMPLES

LURE = (
    b"From: Info <news@shop.example>\r\nTo: a@example.fr\r\nSubject: Votre dossier\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Bonjour, connectez-vous sur https://evil.example/login\r\n"
    b"--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(
        b"<html><body><p>Bonjour "
        b'<a href="https://evil.example/login">https://www.ameli.fr/</a></p>'
        b'<p><a href="https://shop.example/">boutique</a></p></body></html>'
    ).replace(b"\n", b"\r\n")
    + b"--b1--\r\n"
)


def texts(raw: bytes) -> list[str]:
    msg = message_from_bytes(raw, policy=compat32)
    out = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out.append(payload.decode("utf-8", "replace"))
    return out


async def scan_and_apply(raw: bytes, policy: Policy) -> tuple[bytes, Disposition]:
    result = await scan(raw, Envelope(rcpts=("a@example.fr",)), policy)
    return apply_plan(raw, result.plan), result.verdict.disposition


async def test_rescanning_our_output_finds_one_banner_and_one_verdict_header(policy) -> None:
    once, first = await scan_and_apply(LURE, policy)
    assert first is Disposition.TAG
    twice, _ = await scan_and_apply(once, policy)
    thrice, _ = await scan_and_apply(twice, policy)
    for out in (once, twice, thrice):
        header_block = out.split(b"\r\n\r\n", 1)[0]
        assert header_block.count(b"X-Tocsin-Verdict:") == 1
        assert header_block.count(b"[SUSPECT]") == 1
        plain, rich = texts(out)
        assert plain.count(PLAIN_START) == 1
        assert rich.count(HTML_START) == 1
        assert "hxxps://evil[.]example/login" in plain
        assert 'title="hxxps://evil[.]example/login"' in rich
        for text in (plain, rich):  # defanged once, never twice
            assert "[[.]]" not in text
            assert "hxxhxx" not in text
            assert "https://evil.example" not in text
        assert '<a href="https://shop.example/">boutique</a>' in rich
    assert texts(thrice) == texts(twice)


async def test_a_released_example_lure_rescanned_keeps_one_banner(policy) -> None:
    """Quarantined lures may be released; force the tag actions on each pass."""
    raw = (EXAMPLES / "ameli-lure.eml").read_bytes()
    out = raw
    for _ in range(2):
        result = await scan(out, Envelope(), policy)
        tagged = replace(
            result.verdict,
            disposition=Disposition.TAG,
            actions=frozenset({"banner", "defang_links", "subject_tag"}),
        )
        out = apply_plan(out, plan(tagged, result.mime, policy))
        assert out.count(b"X-Tocsin-Verdict:") == 1
        plain, rich = texts(out)
        assert plain.count(PLAIN_START) == 1
        assert rich.count(HTML_START) == 1
        for text in (plain, rich):
            assert "hxxps://ameli-remboursement[.]fr/espace-assure/confirmation" in text
            assert "[[.]]" not in text

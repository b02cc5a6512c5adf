"""Banner insertion and the byte-exact body rewrite."""

from __future__ import annotations

import base64
import email
import re
from email.message import Message
from email.policy import compat32

import pytest

from milter.actions.banner import (
    HTML_START,
    PLAIN_START,
    has_banner,
    html_banner,
    insert_html,
    plain_banner,
    render_banner,
)
from milter.actions.body import rewrite_text_parts
from milter.actions.compose import edit_body
from milter.mime.headers import split_message
from milter.policy.schema import BannerTexts

FR = BannerTexts(
    title="Attention : usurpation possible",
    intro_brand="Ce message se présente comme venant de {brand}.",
    intro_generic="Hameçonnage probable.",
    reasons_heading="Pourquoi :",
    footer="Ne cliquez sur aucun lien.",
)
EN = BannerTexts(
    title="Warning: possible impersonation",
    intro_brand="This message claims to come from {brand}.",
    intro_generic="Likely phishing.",
    reasons_heading="Why:",
    footer="Do not click any link.",
)
TEXTS = [(FR, "fr"), (EN, "en")]
ADVICE = {"fr": "L'Assurance Maladie ne demande jamais vos coordonnées bancaires.", "en": "x"}
REASONS = ["Domaine <ameli-rembours.fr> non officiel", "SPF fail & DKIM absent"]

PDF = bytes(range(256)) * 4
HTML = (
    "<html><head><title>t</title></head>"
    "<BODY class='x' data-a=\"1>2\"><p>Bonjour é</p></body></html>"
)


def _multipart(eol: bytes = b"\r\n") -> bytes:
    pdf64 = base64.encodebytes(PDF).replace(b"\n", eol)
    html64 = base64.encodebytes(HTML.encode("utf-8")).replace(b"\n", eol)
    lines = [
        b"From: Ameli <x@ameli-rembours.fr>",
        b"Subject: =?utf-8?q?Remboursement?=",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="OUTER"',
        b"",
        b"preamble",
        b"--OUTER",
        b'Content-Type: multipart/alternative; boundary="ALT"',
        b"",
        b"--ALT",
        b"Content-Type: text/plain; charset=ISO-8859-1",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        b"Bonjour, votre remboursement de 42=E9 est pr=EAt.",
        b"--ALT",
        b'Content-Type: text/html; charset="utf-8"',
        b"Content-Transfer-Encoding: base64",
        b"",
        html64.rstrip(eol),
        b"--ALT--",
        b"--OUTER",
        b'Content-Type: application/pdf; name="r.pdf"',
        b"Content-Disposition: attachment; filename=r.pdf",
        b"Content-Transfer-Encoding: base64",
        b"",
        pdf64.rstrip(eol),
        b"--OUTER--",
        b"epilogue",
        b"",
    ]
    return eol.join(lines)


def _tree(msg: Message) -> list[tuple[str, str | None]]:
    return [(p.get_content_type(), p.get_boundary()) for p in msg.walk()]


def _parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=compat32)


def _apply(raw: bytes) -> bytes | None:
    return edit_body(raw, banner=render_banner(TEXTS, "Assurance Maladie", REASONS, ADVICE))


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_multipart_gets_one_banner_per_text_part(eol: bytes) -> None:
    raw = _multipart(eol)
    body = _apply(raw)
    assert body is not None
    header_block, old_body = split_message(raw)
    new_raw = header_block + body
    old, new = _parse(raw), _parse(new_raw)
    assert _tree(old) == _tree(new)
    plain, rich, pdf = (p for p in new.walk() if not p.is_multipart())
    assert plain.get_content_charset() == "iso-8859-1"
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert rich["Content-Transfer-Encoding"] == "base64"
    plain_text = plain.get_payload(decode=True).decode("iso-8859-1")
    html_text = rich.get_payload(decode=True).decode("utf-8")
    assert plain_text.count(PLAIN_START) == 1
    assert plain_text.startswith(PLAIN_START)
    assert "42é est prêt" in plain_text
    assert html_text.count(HTML_START) == 1
    assert "<BODY class='x' data-a=\"1>2\">" + HTML_START in html_text
    assert "&lt;ameli-rembours.fr&gt;" in html_text
    assert "&amp; DKIM" in html_text
    assert pdf.get_payload(decode=True) == PDF
    pdf_raw = old_body[old_body.index(b"Content-Type: application/pdf") :]
    assert pdf_raw in body  # attachment, boundaries and epilogue byte-identical
    assert body.startswith(b"preamble" + eol + b"--OUTER" + eol)
    assert (b"\r\n" in body) == (eol == b"\r\n")
    # idempotent: a second pass changes nothing, so nothing stacks
    assert _apply(new_raw) is None


def test_utf8_fallback_updates_charset_and_7bit_becomes_qp() -> None:
    raw = (
        b'Content-Type: multipart/alternative; boundary="b"\n\n--b\n'
        b"Content-Type: text/plain; charset=us-ascii\n\nHello\n--b--\n"
    )
    body = rewrite_text_parts(raw, lambda t: "Ça va ? " + t, lambda t: None)
    assert body is not None
    part = _parse(split_message(raw)[0] + body).get_payload()[0]
    assert part.get_content_charset() == "utf-8"
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_payload(decode=True).decode("utf-8") == "Ça va ? Hello"


def test_single_part_keeps_headers_and_folds_to_charset() -> None:
    raw = b"Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\n"
    body = _apply(raw)
    assert body is not None
    assert body.isascii()
    assert b"\r\n" in body
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert b"Attention : usurpation possible" in body
    assert b"presente" in body
    assert body.endswith(b"Hello\r\n")


def test_signed_encrypted_and_pgp_are_never_touched() -> None:
    signed = (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";'
        b' boundary="s"\n\n--s\nContent-Type: text/plain\n\nhi\n--s--\n'
    )
    smime = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\n\nMIIB\n"
    pgp = b"Content-Type: text/plain\n\n-----BEGIN PGP SIGNED MESSAGE-----\nhi\n"
    for raw in (signed, smime, pgp):
        assert _apply(raw) is None


def test_html_without_body_tag_and_planted_marker() -> None:
    banner = html_banner(TEXTS, None, [], {})
    assert insert_html("<p>x</p>", banner) == banner + "<p>x</p>"
    planted = "<body>" + HTML_START + "fake<!-- tocsin-banner:end --><p>x</p></body>"
    once = insert_html(planted, banner)
    assert once == "<body>" + banner + "<p>x</p></body>"
    assert insert_html(once, banner) == once


def test_banner_renderings() -> None:
    text = plain_banner(TEXTS, "Ameli", REASONS, ADVICE)
    assert has_banner(text)
    assert "venant de Ameli" in text
    assert " - SPF fail & DKIM absent" in text
    rich = html_banner(TEXTS, "<b>Ameli</b>", REASONS, ADVICE)
    assert 'role="alert"' in rich
    assert "&lt;b&gt;Ameli&lt;/b&gt;" in rich
    assert re.search(r'<span style="display:none;max-height:0;[^"]*overflow:hidden', rich)
    assert "<style" not in rich
    assert has_banner(rich)
    assert has_banner("> " + text.splitlines()[0])
    assert not has_banner("hello")


def test_junk_in_the_header_block_is_not_copied_into_the_body() -> None:
    # The stdlib parser ends the headers at the first non-header line; the body we
    # rewrite starts after the blank line, and must be decoded from there only.
    raw = b"Subject: x\nthis line is not a header\nmore junk\n\nBody text\n"
    body = _apply(raw)
    assert body is not None
    assert body.endswith(b"\nBody text\n")
    assert b"junk" not in body


def test_html_banner_is_pure_ascii_so_accents_survive_without_charset() -> None:
    rich = html_banner(TEXTS, "Caisse des Dépôts", REASONS, ADVICE)
    assert rich.isascii()
    assert "Caisse des D&#233;p&#244;ts" in rich
    assert "coordonn&#233;es bancaires" in rich

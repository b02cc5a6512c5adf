"""Signed or encrypted mail (S/MIME, PGP/MIME, inline PGP) never gets a body change."""

from __future__ import annotations

import base64

import pytest

from milter.actions.banner import render_banner
from milter.actions.compose import edit_body
from milter.actions.defang import LinkRewrite
from milter.actions.targets import LinkTargets
from milter.policy.schema import BannerTexts

TEXTS = BannerTexts(
    title="Attention",
    intro_brand="{brand}",
    intro_generic="Prudence.",
    reasons_heading="Pourquoi :",
    footer="Fin.",
)
BANNER = render_banner([(TEXTS, "fr")], None, ["raison"], {})
LINKS = LinkRewrite(LinkTargets.of(hosts=["evil.example"]))
TEXT = b"Content-Type: text/plain\n\nGo to https://evil.example/login\n"
PGP_INLINE = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nGo to https://evil.example/\n"


def mixed(*parts: bytes, ctype: bytes = b"multipart/mixed") -> bytes:
    body = b"".join(b"--B\n" + p for p in parts)
    return b"Content-Type: " + ctype + b'; boundary="B"\n\n' + body + b"--B--\n"


CASES = {
    "pgp-mime signed": mixed(
        TEXT,
        b"Content-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n",
        ctype=b'multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256',
    ),
    "pgp-mime encrypted": mixed(
        b"Content-Type: application/pgp-encrypted\n\nVersion: 1\n",
        b"Content-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\n",
        ctype=b'multipart/encrypted; protocol="application/pgp-encrypted"',
    ),
    "s/mime signed, upper case type": mixed(
        TEXT,
        b"Content-Type: application/pkcs7-signature; name=smime.p7s\n\nMIIB\n",
        ctype=b'Multipart/Signed; protocol="application/pkcs7-signature"',
    ),
    "s/mime opaque": b"Content-Type: application/x-pkcs7-mime; smime-type=signed-data\n\nMIIB\n",
    "s/mime enveloped": b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\n\nMII\n",
    "signed part inside a list's mixed wrapper": mixed(
        mixed(
            TEXT, b"Content-Type: application/pkcs7-signature\n\nMIIB\n", ctype=b"multipart/signed"
        ),
        b"Content-Type: text/plain\n\nList footer https://evil.example/unsub\n",
    ),
    "signature flattened into mixed by a relay": mixed(
        TEXT, b"Content-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n"
    ),
    "inline pgp": b"Content-Type: text/plain\n\n" + PGP_INLINE,
    "inline pgp in base64": b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
    + base64.encodebytes(PGP_INLINE),
    "inline pgp in the second alternative": mixed(
        TEXT,
        b"Content-Type: text/html\n\n<pre>" + PGP_INLINE + b"</pre>\n",
        ctype=b"multipart/alternative",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_signed_or_encrypted_body_is_never_changed(name: str) -> None:
    raw = CASES[name]
    assert edit_body(raw, banner=BANNER, links=LINKS) is None
    assert edit_body(raw, links=LINKS) is None


def test_the_same_text_unsigned_is_changed() -> None:
    body = edit_body(mixed(TEXT), banner=BANNER, links=LINKS)
    assert body is not None
    assert b"hxxps://evil[.]example/login" in body

"""Genuine brand mail that proves itself over real DNS is not tagged for its own wording."""

from __future__ import annotations

import shutil

import pytest

from milter.engine import scan
from milter.model.auth import AuthResult, AuthStatus
from milter.model.verdict import Disposition
from tests.auth.test_dkim import make_key, sign
from tests.engine.test_brand_auth import ENVELOPE

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not found")


def notice(extra: str = "") -> bytes:
    return (
        "From: Assurance Maladie <ne-pas-repondre@ameli.fr>\r\n"
        "To: assure@example.org\r\nSubject: Votre RIB\r\n"
        "Date: Mon, 02 Jun 2025 10:00:00 +0200\r\nMessage-ID: <2@ameli.fr>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Bonjour,\r\nMettez à jour vos coordonnées bancaires dans votre compte ameli "
        f"immédiatement pour éviter un retard de remboursement.{extra}\r\n"
    ).encode()


async def scanned(raw: bytes, dns_server, dns_resolver, policy):  # type: ignore[no-untyped-def]
    key = make_key(1024)
    dns_server.add("sel._domainkey.ameli.fr", "TXT", key.record())
    dns_server.add("_dmarc.ameli.fr", "TXT", "v=DMARC1; p=reject")
    dns_server.add("example.net", "TXT", "v=spf1 -all")
    return await scan(sign(raw, "ameli.fr", "sel", key), ENVELOPE, policy, dns_resolver)


async def test_proven_brand_mail_keeps_its_wording(dns_server, dns_resolver, policy) -> None:
    result = await scanned(notice(), dns_server, dns_resolver, policy)
    verdict = result.verdict
    assert ("dmarc", "pass") in {(a.method, str(a.result)) for a in verdict.auth}
    assert verdict.disposition is Disposition.ACCEPT
    assert any(r.rule == "brand-proven" for r in verdict.reasons)
    softened = [f for f in verdict.findings if f.code in ("BRAND_NEVER_ASKS", "URGENCY")]
    assert softened
    assert all(f.severity == 0 for f in softened)


async def test_a_foreign_callback_number_contradicts_the_proof(
    dns_server, dns_resolver, policy
) -> None:
    raw = notice(" Pour toute question, appelez le 08 99 23 45 67.")
    result = await scanned(raw, dns_server, dns_resolver, policy)
    assert result.verdict.disposition is not Disposition.ACCEPT
    assert not any(r.rule == "brand-proven" for r in result.verdict.reasons)


def test_dkim_results_expose_their_signer() -> None:
    signed = AuthResult("dkim", AuthStatus.PASS, props={"header.d": "Info.Ameli.FR."})
    assert signed.signer == "info.ameli.fr"
    assert AuthResult("spf", AuthStatus.PASS, props={"header.d": "x.fr"}).signer == ""

"""Brand enforcement end to end over a real DNS server on 127.0.0.1: a brand's own From
domain must prove itself with aligned DMARC pass; DNS failure tempfails."""

from __future__ import annotations

import shutil

import pytest

from milter.actions.apply import apply_plan
from milter.engine import scan
from milter.model.envelope import Envelope
from milter.model.plan import HeaderOp
from milter.model.verdict import Disposition
from tests.auth.test_dkim import MESSAGE, make_key, sign

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not found")
ENVELOPE = Envelope(
    client_ip="192.0.2.10",
    helo="mail.example.net",
    mail_from="bounce@example.net",
    rcpts=("assure@example.org",),
)


def serve_ameli(dns_server, dmarc: str = "v=DMARC1; p=none") -> None:
    key = make_key(1024)
    dns_server.add("sel._domainkey.ameli.fr", "TXT", key.record())
    dns_server.add("_dmarc.ameli.fr", "TXT", dmarc)
    dns_server.add("example.net", "TXT", "v=spf1 -all")
    dns_server.add("mail.example.net", "TXT", "v=spf1 -all")


async def test_signed_brand_mail_passes_with_authentication_results(
    dns_server, dns_resolver, policy
) -> None:
    serve_ameli(dns_server)
    raw = sign(MESSAGE, "ameli.fr", "sel", make_key(1024))
    result = await scan(raw, ENVELOPE, policy, dns_resolver)
    codes = {f.code for f in result.verdict.findings}
    assert "BRAND_AUTH_FAIL" not in codes, result.verdict.findings
    assert result.verdict.disposition is Disposition.ACCEPT
    results = {(a.method, str(a.result)) for a in result.verdict.auth}
    assert ("dkim", "pass") in results
    assert ("dmarc", "pass") in results
    assert ("spf", "fail") in results
    inserted = [e for e in result.plan.header_edits if e.op is HeaderOp.INSERT]
    assert inserted[0].name == "Authentication-Results"
    assert inserted[0].value.startswith("tocsin.invalid;")
    assert "dmarc=pass" in inserted[0].value


async def test_one_changed_byte_makes_the_brand_claim_fail(
    dns_server, dns_resolver, policy
) -> None:
    serve_ameli(dns_server)  # p=none: a strict brand is enforced regardless
    raw = sign(MESSAGE, "ameli.fr", "sel", make_key(1024)).replace(b"disponible", b"disponibIe")
    result = await scan(raw, ENVELOPE, policy, dns_resolver)
    fail = [f for f in result.verdict.findings if f.code == "BRAND_AUTH_FAIL"]
    assert fail, result.verdict.findings
    assert "no aligned DMARC pass" in fail[0].evidence["failed"]
    assert "ameli.fr" in fail[0].evidence["expected"]
    assert result.verdict.disposition is Disposition.QUARANTINE


async def test_dns_timeout_on_a_brand_claim_tempfails(dns_server, dns_resolver, policy) -> None:
    serve_ameli(dns_server)
    dns_server.fault("sel._domainkey.ameli.fr", "timeout")
    raw = sign(MESSAGE, "ameli.fr", "sel", make_key(1024))
    result = await scan(raw, ENVELOPE, policy, dns_resolver)
    assert "AUTH_TEMPERROR" in {f.code for f in result.verdict.findings}
    assert result.verdict.disposition is Disposition.TEMPFAIL
    assert result.plan.smtp_reply is not None
    assert result.plan.smtp_reply.code == 451


async def test_forged_authentication_results_are_all_removed(
    dns_server, dns_resolver, policy
) -> None:
    serve_ameli(dns_server)
    forged = (
        b"Authentication-Results: tocsin.invalid; dmarc=pass header.from=ameli.fr\r\n"
        b"Authentication-Results: mx.upstream.example; spf=pass\r\n"
        b"Authentication-Results: TOCSIN.invalid; dkim=pass\r\n"
    )
    raw = forged + sign(MESSAGE, "ameli.fr", "sel", make_key(1024))
    result = await scan(raw, ENVELOPE, policy, dns_resolver)
    delivered = apply_plan(raw, result.plan)
    assert delivered.count(b"Authentication-Results: tocsin.invalid;") == 1
    assert b"TOCSIN.invalid" not in delivered
    assert b"mx.upstream.example; spf=pass" in delivered  # not ours: kept, not believed

"""RFC 9989 tree walk against a real DNS server: a failure *above* the name holding the
policy record is taken as "no record" (it can only narrow the Organizational Domain); a
failure at or before it is a temperror (it could change the policy)."""

from __future__ import annotations

import shutil

import pytest

from milter.auth.dmarc import check_dmarc
from milter.dns.stub import DnsResolver
from milter.engine import scan
from milter.model.auth import AuthResult, AuthStatus
from milter.model.verdict import Disposition
from tests.auth.test_dkim import MESSAGE, make_key, sign
from tests.engine.test_brand_auth import ENVELOPE
from tests.support.dnsserver import DnsTestServer
from tests.support.fixtures import TEST_DNS_TIMEOUT

REJECT = "v=DMARC1; p=reject"


def dkim_pass(domain: str) -> AuthResult:
    return AuthResult("dkim", AuthStatus.PASS, props={"header.d": domain, "header.s": "s"})


@pytest.mark.parametrize("fault", ["refused", "servfail"])
async def test_failure_above_the_author_domain_record_is_no_record(fault: str) -> None:
    zone = {"_dmarc.ameli.fr": [("TXT", REJECT)], "mail.ameli.fr": [("A", "192.0.2.5")]}
    with DnsTestServer(zone) as server:
        server.fault("_dmarc.fr", fault)
        resolver = DnsResolver([server.address], timeout=TEST_DNS_TIMEOUT)
        own = await check_dmarc(resolver, "ameli.fr", None, [dkim_pass("ameli.fr")])
        sub = await check_dmarc(resolver, "mail.ameli.fr", None, [dkim_pass("ameli.fr")])
        forged = await check_dmarc(resolver, "ameli.fr", None, [dkim_pass("evil.example")])
    assert own.status is AuthStatus.PASS
    assert (sub.status, sub.policy_domain, sub.org_domain) == (
        AuthStatus.PASS,
        "ameli.fr",
        "ameli.fr",
    )
    assert forged.status is AuthStatus.FAIL  # never turns a failure into a pass


@pytest.mark.parametrize("fault", ["refused", "servfail"])
async def test_failure_at_or_before_the_policy_record_is_temperror(fault: str) -> None:
    zone = {"_dmarc.ameli.fr": [("TXT", REJECT)], "mail.ameli.fr": [("A", "192.0.2.5")]}
    with DnsTestServer(zone) as server:
        server.fault("_dmarc.ameli.fr", fault)
        resolver = DnsResolver([server.address], timeout=TEST_DNS_TIMEOUT)
        own = await check_dmarc(resolver, "ameli.fr", None, [dkim_pass("ameli.fr")])
        below = await check_dmarc(resolver, "mail.ameli.fr", None, [dkim_pass("ameli.fr")])
    assert own.status is AuthStatus.TEMPERROR
    assert below.status is AuthStatus.TEMPERROR  # the record that would apply is unknown


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not found")
async def test_brand_mail_is_not_tempfailed_by_a_refusing_tld(
    dns_server, dns_resolver, policy
) -> None:
    key = make_key(1024)
    dns_server.add("sel._domainkey.ameli.fr", "TXT", key.record())
    dns_server.add("_dmarc.ameli.fr", "TXT", REJECT)
    dns_server.add("example.net", "TXT", "v=spf1 -all")
    dns_server.fault("_dmarc.fr", "refused")
    result = await scan(sign(MESSAGE, "ameli.fr", "sel", key), ENVELOPE, policy, dns_resolver)
    dmarc = [a for a in result.verdict.auth if a.method == "dmarc"]
    assert [str(a.result) for a in dmarc] == ["pass"]
    assert result.verdict.disposition is Disposition.ACCEPT
    assert not {f.code for f in result.verdict.findings} & {"AUTH_TEMPERROR", "BRAND_AUTH_FAIL"}

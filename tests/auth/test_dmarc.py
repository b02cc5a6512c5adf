"""DMARC evaluation with records served by the in-memory FakeResolver (RFC 9989)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from milter.auth.dmarc import (
    DmarcLookup,
    authenticated_domains,
    check_dmarc,
    evaluate,
)
from milter.auth.dmarc_record import DmarcRecord, Policy, parse_record
from milter.auth.orgdomain import OrgDomainMode
from milter.dns.fake import FakeResolver
from milter.dns.resolver import DnsServFail, DnsTimeout
from milter.dns.stub import DnsResolver
from milter.model.auth import AuthResult, AuthStatus
from tests.support.dnsserver import DnsTestServer
from tests.support.fixtures import TEST_DNS_TIMEOUT


def dns(records: Mapping[str, str | list[str] | Exception], **hosts: str) -> FakeResolver:
    """TXT records under _dmarc.<name>, plus A records (keyword names use _ for .)."""
    data: dict[tuple[str, str], object] = {
        (f"_dmarc.{name}", "TXT"): value for name, value in records.items()
    }
    data |= {(name.replace("_", "."), "A"): ip for name, ip in hosts.items()}
    return FakeResolver(data)  # type: ignore[arg-type]


def dkim_pass(domain: str) -> AuthResult:
    return AuthResult("dkim", AuthStatus.PASS, props={"header.d": domain, "header.s": "s"})


def spf(status: AuthStatus, mailfrom: str) -> AuthResult:
    return AuthResult("spf", status, props={"smtp.mailfrom": mailfrom})


AMELI = {"ameli.fr": "v=DMARC1; p=reject; sp=quarantine; np=reject"}


async def test_record_at_org_domain_fail_reject() -> None:
    result = await check_dmarc(dns(AMELI), "ameli.fr", None, [])
    assert result.status is AuthStatus.FAIL
    assert result.policy is Policy.REJECT
    assert result.applied_policy is Policy.REJECT
    assert result.policy_domain == "ameli.fr"
    assert result.auth_result().props == {"header.from": "ameli.fr", "policy.dmarc": "reject"}


async def test_aligned_dkim_passes() -> None:
    result = await check_dmarc(dns(AMELI), "AMELI.fr.", None, [dkim_pass("ameli.fr")])
    assert result.status is AuthStatus.PASS
    assert result.aligned_dkim == ("ameli.fr",)
    assert result.applied_policy is None


async def test_existing_subdomain_without_record_uses_sp() -> None:
    resolver = dns(AMELI, news_ameli_fr="192.0.2.1")
    result = await check_dmarc(resolver, "news.ameli.fr", None, [])
    assert result.status is AuthStatus.FAIL
    assert result.policy_domain == "ameli.fr"
    assert result.policy is Policy.QUARANTINE
    assert result.org_domain == "ameli.fr"


async def test_nonexistent_subdomain_uses_np() -> None:
    records = {"ameli.fr": "v=DMARC1; p=none; sp=none; np=reject"}
    result = await check_dmarc(dns(records), "remboursement.ameli.fr", None, [])
    assert result.status is AuthStatus.FAIL
    assert result.policy is Policy.REJECT


async def test_np_absent_falls_back_to_sp() -> None:
    records = {"ameli.fr": "v=DMARC1; p=reject; sp=none"}
    result = await check_dmarc(dns(records), "remboursement.ameli.fr", None, [])
    assert result.policy is Policy.NONE


GOUV = {
    "gouv.fr": "v=DMARC1; p=reject; psd=y",
    "impots.gouv.fr": "v=DMARC1; p=reject; sp=reject",
}


async def test_psd_record_covers_unregistered_name_under_public_suffix() -> None:
    """A lookalike under gouv.fr gets the PSD policy in treewalk mode, nothing with the PSL."""
    resolver = dns(GOUV)
    walk = await check_dmarc(resolver, "impots-remboursement.gouv.fr", None, [])
    assert walk.status is AuthStatus.FAIL
    assert walk.policy_domain == "gouv.fr"
    assert walk.policy is Policy.REJECT
    assert walk.org_domain == "impots-remboursement.gouv.fr"

    psl = await check_dmarc(
        resolver, "impots-remboursement.gouv.fr", None, [], org_domain_mode="psl"
    )
    assert psl.status is AuthStatus.NONE
    assert psl.org_domain == "impots-remboursement.gouv.fr"


async def test_psd_boundary_limits_relaxed_alignment() -> None:
    resolver = dns(GOUV)
    ok = await check_dmarc(resolver, "info.impots.gouv.fr", None, [dkim_pass("impots.gouv.fr")])
    assert ok.status is AuthStatus.PASS
    assert ok.org_domain == "impots.gouv.fr"
    # another name under the same Public Suffix Domain is another organisation
    bad = await check_dmarc(resolver, "impots.gouv.fr", None, [dkim_pass("evil.gouv.fr")])
    assert bad.status is AuthStatus.FAIL


async def test_long_name_uses_at_most_eight_lookups() -> None:
    resolver = dns({"example.fr": "v=DMARC1; p=reject"})
    name = "a.b.c.d.e.f.g.h.i.example.fr"  # 11 labels
    result = await check_dmarc(resolver, name, None, [])
    txt = [q for q, t in resolver.queries if t == "TXT"]
    assert len(txt) == 8  # 11 labels, then 7, 6, 5, 4, 3, 2, 1
    assert txt[:2] == [f"_dmarc.{name}", "_dmarc.e.f.g.h.i.example.fr"]  # 7 labels
    assert result.policy_domain == "example.fr"
    assert result.status is AuthStatus.FAIL


async def test_walk_stops_at_psd_n() -> None:
    resolver = dns({"ameli.fr": "v=DMARC1; p=reject; psd=n"}, news_ameli_fr="192.0.2.1")
    await check_dmarc(resolver, "news.ameli.fr", None, [])
    assert ("_dmarc.fr", "TXT") not in resolver.queries


@pytest.mark.parametrize(
    ("record", "from_domain", "auth_domain", "status"),
    [
        ("v=DMARC1; p=reject", "news.ameli.fr", "ameli.fr", AuthStatus.PASS),
        ("v=DMARC1; p=reject; adkim=s", "news.ameli.fr", "ameli.fr", AuthStatus.FAIL),
        ("v=DMARC1; p=reject; adkim=s", "ameli.fr", "ameli.fr", AuthStatus.PASS),
        ("v=DMARC1; p=reject", "ameli.fr", "mail.ameli.fr", AuthStatus.PASS),
        ("v=DMARC1; p=reject", "ameli.fr", "ameli.fr.evil.example", AuthStatus.FAIL),
        ("v=DMARC1; p=reject", "ameli.fr", "xameli.fr", AuthStatus.FAIL),
    ],
)
async def test_dkim_alignment(
    record: str, from_domain: str, auth_domain: str, status: AuthStatus
) -> None:
    resolver = dns({"ameli.fr": record}, news_ameli_fr="192.0.2.1")
    result = await check_dmarc(resolver, from_domain, None, [dkim_pass(auth_domain)])
    assert result.status is status


@pytest.mark.parametrize(
    ("record", "spf_result", "status"),
    [
        ("v=DMARC1; p=reject", spf(AuthStatus.PASS, "bounce@news.ameli.fr"), AuthStatus.PASS),
        ("v=DMARC1; p=reject; aspf=s", spf(AuthStatus.PASS, "b@news.ameli.fr"), AuthStatus.FAIL),
        ("v=DMARC1; p=reject; aspf=s", spf(AuthStatus.PASS, "bounce@ameli.fr"), AuthStatus.PASS),
        ("v=DMARC1; p=reject", spf(AuthStatus.SOFTFAIL, "bounce@ameli.fr"), AuthStatus.FAIL),
        ("v=DMARC1; p=reject", spf(AuthStatus.PASS, "x@phish.example"), AuthStatus.FAIL),
    ],
)  # fmt: skip
async def test_spf_alignment(record: str, spf_result: AuthResult, status: AuthStatus) -> None:
    result = await check_dmarc(dns({"ameli.fr": record}), "ameli.fr", spf_result, [])
    assert result.status is status


async def test_failing_dkim_signature_does_not_align() -> None:
    failed = AuthResult("dkim", AuthStatus.FAIL, props={"header.d": "ameli.fr"})
    result = await check_dmarc(dns(AMELI), "ameli.fr", None, [failed])
    assert result.status is AuthStatus.FAIL


async def test_testing_flag_applies_one_step_milder() -> None:
    result = await check_dmarc(dns({"ameli.fr": "v=DMARC1; p=reject; t=y"}), "ameli.fr", None, [])
    assert result.status is AuthStatus.FAIL
    assert result.testing
    assert result.policy is Policy.REJECT
    assert result.applied_policy is Policy.QUARANTINE


async def test_no_record_is_none() -> None:
    result = await check_dmarc(dns({}), "example.fr", None, [dkim_pass("example.fr")])
    assert result.status is AuthStatus.NONE


async def test_multiple_records_are_discarded_and_the_walk_goes_on() -> None:
    records: dict[str, str | list[str] | Exception] = {
        "news.ameli.fr": ["v=DMARC1; p=none", "v=DMARC1; p=reject"],
        "ameli.fr": "v=DMARC1; p=quarantine",
    }
    result = await check_dmarc(dns(records, news_ameli_fr="192.0.2.1"), "news.ameli.fr", None, [])
    assert result.policy_domain == "ameli.fr"
    assert result.policy is Policy.QUARANTINE


async def test_non_dmarc_txt_records_are_ignored() -> None:
    records: dict[str, str | list[str] | Exception] = {
        "ameli.fr": ["v=spf1 -all", "v=DMARC1; p=reject"]
    }
    result = await check_dmarc(dns(records), "ameli.fr", None, [])
    assert result.policy is Policy.REJECT


@pytest.mark.parametrize("error", [DnsTimeout("t"), DnsServFail("s")])
async def test_dns_failure_is_temperror(error: Exception) -> None:
    result = await check_dmarc(dns({"ameli.fr": error}), "ameli.fr", None, [])
    assert result.status is AuthStatus.TEMPERROR


async def test_dns_failure_in_alignment_walk_is_temperror() -> None:
    resolver = dns({"ameli.fr": "v=DMARC1; p=reject", "mail.ameli.fr": DnsTimeout("t")})
    result = await check_dmarc(resolver, "ameli.fr", None, [dkim_pass("mail.ameli.fr")])
    assert result.status is AuthStatus.TEMPERROR


async def test_identical_domain_needs_no_alignment_walk() -> None:
    resolver = dns({"ameli.fr": "v=DMARC1; p=reject", "mail.ameli.fr": DnsTimeout("t")})
    result = await check_dmarc(
        resolver, "ameli.fr", None, [dkim_pass("mail.ameli.fr"), dkim_pass("ameli.fr")]
    )
    assert result.status is AuthStatus.PASS


@pytest.mark.parametrize("bad", ["", "a..b", "x" * 64 + ".fr"])
async def test_invalid_from_domain_is_permerror(bad: str) -> None:
    result = await check_dmarc(dns({}), bad, None, [])
    assert result.status is AuthStatus.PERMERROR


async def test_psl_mode_relaxed_alignment() -> None:
    resolver = dns({"ameli.fr": "v=DMARC1; p=reject"}, news_ameli_fr="192.0.2.1")
    result = await check_dmarc(
        resolver, "news.ameli.fr", None, [dkim_pass("mail.ameli.fr")], org_domain_mode="psl"
    )
    assert result.status is AuthStatus.PASS
    assert result.org_domain == "ameli.fr"


def test_evaluate_is_pure() -> None:
    lookup = DmarcLookup(
        from_domain="news.ameli.fr",
        record=parse_record("v=DMARC1; p=reject; sp=quarantine; np=none"),
        policy_domain="ameli.fr",
        org_domain="ameli.fr",
        org_domains={"bounce.ameli.fr": "ameli.fr"},
        author_exists=False,
    )
    assert evaluate(lookup, None, []).policy is Policy.NONE
    assert evaluate(lookup, "bounce.ameli.fr", []).status is AuthStatus.PASS
    none = DmarcLookup("x.fr", None, None, "x.fr")
    assert evaluate(none, None, []).status is AuthStatus.NONE
    assert isinstance(lookup.record, DmarcRecord)


def test_authenticated_domains() -> None:
    spf_pass = spf(AuthStatus.PASS, "Bounce@Ameli.FR")
    helo = AuthResult("spf", AuthStatus.PASS, props={"smtp.helo": "mx.ameli.fr"})
    dkim = [dkim_pass("a.fr"), dkim_pass("A.fr"), AuthResult("dkim", AuthStatus.FAIL)]
    assert authenticated_domains(spf_pass, dkim) == ("ameli.fr", ("a.fr",))
    assert authenticated_domains(helo, []) == ("mx.ameli.fr", ())
    assert authenticated_domains(None, []) == (None, ())


async def test_mode_enum_accepted() -> None:
    result = await check_dmarc(dns(AMELI), "ameli.fr", None, [], org_domain_mode=OrgDomainMode.PSL)
    assert result.status is AuthStatus.FAIL


async def test_real_dns_psd_walk_and_servfail() -> None:
    zone = {
        "_dmarc.gouv.fr": [("TXT", "v=DMARC1; p=reject; psd=y")],
        "_dmarc.impots.gouv.fr": [("TXT", "v=DMARC1; p=quarantine")],
        "info.impots.gouv.fr": [("A", "192.0.2.7")],
    }
    with DnsTestServer(zone) as server:
        resolver = DnsResolver([server.address], timeout=TEST_DNS_TIMEOUT)
        ok = await check_dmarc(resolver, "info.impots.gouv.fr", None, [dkim_pass("impots.gouv.fr")])
        fake = await check_dmarc(resolver, "impots-gouv.gouv.fr", None, [])
        server.fault("_dmarc.ameli.fr", "servfail")
        broken = await check_dmarc(resolver, "ameli.fr", None, [])
    assert (ok.status, ok.org_domain) == (AuthStatus.PASS, "impots.gouv.fr")
    assert (fake.status, fake.policy_domain, fake.policy) == (
        AuthStatus.FAIL,
        "gouv.fr",
        Policy.REJECT,
    )
    assert broken.status is AuthStatus.TEMPERROR

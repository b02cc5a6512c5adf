"""SPF evaluation details and the two-identity helper, on the in-memory FakeResolver."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from milter.auth.spf import check_host, check_spf, valid_domain
from milter.dns.fake import Entry, FakeResolver
from milter.dns.resolver import DnsServFail, DnsTimeout
from milter.model.auth import AuthResult, AuthStatus

IP = "192.0.2.10"


async def spf(data: Mapping[tuple[str, str], Entry], ip: str = IP) -> AuthStatus:
    fake = FakeResolver(data)
    result = await check_host(ip, "example.com", "u@example.com", "h.example.com", fake)
    return result.status


async def test_dns_term_limit_is_ten() -> None:
    def chain(n: int) -> dict[tuple[str, str], Entry]:
        data: dict[tuple[str, str], Entry] = {}
        names = ["example.com"] + [f"i{k}.example.com" for k in range(n)]
        for here, nxt in itertools.pairwise(names):
            data[(here, "TXT")] = [f"v=spf1 include:{nxt} -all"]
        data[(names[-1], "TXT")] = [f"v=spf1 ip4:{IP} -all"]
        return data

    assert await spf(chain(10)) == AuthStatus.PASS  # 10 includes: at the limit
    assert await spf(chain(11)) == AuthStatus.PERMERROR


async def test_void_lookup_limit_is_two() -> None:
    two = {("example.com", "TXT"): ["v=spf1 a:n1.example.com a:n2.example.com -all"]}
    three = {("example.com", "TXT"): ["v=spf1 a:n1.example.com mx:n2.example.com a:n3.x.org"]}
    assert await spf(two) == AuthStatus.FAIL
    assert await spf(three) == AuthStatus.PERMERROR


async def test_more_than_ten_mx_is_permerror() -> None:
    mx = [f"{k} mx{k}.example.com" for k in range(11)]
    data = {("example.com", "TXT"): ["v=spf1 mx -all"], ("example.com", "MX"): mx}
    assert await spf(data) == AuthStatus.PERMERROR
    data[("example.com", "MX")] = mx[:10]
    data[("mx9.example.com", "A")] = [IP]
    assert await spf(data) == AuthStatus.PASS


async def test_ptr_looks_at_ten_names_only() -> None:
    names = [f"h{k}.example.com" for k in range(11)]
    data: dict[tuple[str, str], Entry] = {
        ("example.com", "TXT"): ["v=spf1 ptr -all"],
        ("10.2.0.192.in-addr.arpa", "PTR"): names,
        (names[10], "A"): [IP],
    }
    assert await spf(data) == AuthStatus.FAIL
    data[(names[9], "A")] = [IP]
    assert await spf(data) == AuthStatus.PASS
    data[("10.2.0.192.in-addr.arpa", "PTR")] = DnsTimeout("slow")
    assert await spf(data) == AuthStatus.FAIL  # §5.5: a PTR error is just no match


async def test_dns_errors_are_temperror_and_records_are_selected() -> None:
    assert await spf({("example.com", "TXT"): DnsServFail("x")}) == AuthStatus.TEMPERROR
    data: dict[tuple[str, str], Entry] = {
        ("example.com", "TXT"): ["v=spf1 mx -all"],
        ("example.com", "MX"): DnsTimeout("x"),
    }
    assert await spf(data) == AuthStatus.TEMPERROR
    assert await spf({("example.com", "TXT"): ["hello", "v=spf1 -all"]}) == AuthStatus.FAIL
    two = {("example.com", "TXT"): ["v=spf1 -all", "v=spf1 +all"]}
    assert await spf(two) == AuthStatus.PERMERROR
    assert await spf({("example.com", "TXT"): ["v=spf10 +all"]}) == AuthStatus.NONE
    assert await spf({}) == AuthStatus.NONE


async def test_explanation_and_mapped_ipv6_client() -> None:
    fake = FakeResolver(
        {
            ("example.com", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all exp=why.example.com"],
            ("why.example.com", "TXT"): ["%{i} may not send for %{d} (%{l})"],
        }
    )
    ok = await check_host("::ffff:192.0.2.99", "example.com", "bob@example.com", "h.example", fake)
    assert ok.status == AuthStatus.PASS
    assert ok.mechanism == "ip4:192.0.2.0/24"
    bad = await check_host("198.51.100.7", "example.com", "bob@example.com", "h.example", fake)
    assert bad.status == AuthStatus.FAIL
    assert bad.explanation == "198.51.100.7 may not send for example.com (bob)"


async def test_check_spf_null_sender_uses_postmaster_at_helo() -> None:
    fake = FakeResolver({("mx.example.com", "TXT"): [f"v=spf1 ip4:{IP} -all"]})
    report = await check_spf(IP, "<>", "MX.example.com", fake)
    assert report.helo is not None
    assert report.helo.status == AuthStatus.PASS
    assert report.mailfrom.status == AuthStatus.PASS
    assert report.mailfrom.sender == "postmaster@mx.example.com"
    assert len(fake.queries) == 1  # one evaluation serves both identities
    assert report.auth_results() == [
        AuthResult("spf", AuthStatus.PASS, report.mailfrom.reason,
                   {"smtp.mailfrom": "postmaster@mx.example.com"}),
        AuthResult("spf", AuthStatus.PASS, report.helo.reason, {"smtp.helo": "mx.example.com"}),
    ]  # fmt: skip


async def test_check_spf_both_identities_and_literal_helo() -> None:
    fake = FakeResolver(
        {
            ("example.fr", "TXT"): ["v=spf1 -all"],
            ("relay.example.net", "TXT"): [f"v=spf1 ip4:{IP} -all"],
        }
    )
    report = await check_spf(IP, "alice@example.fr", "relay.example.net", fake)
    assert report.helo is not None
    assert report.helo.status == AuthStatus.PASS
    assert report.mailfrom.status == AuthStatus.FAIL
    assert report.mailfrom.to_auth_result().props == {"smtp.mailfrom": "alice@example.fr"}
    literal = await check_spf(IP, "alice@example.fr", "[192.0.2.10]", fake)
    assert literal.helo is None
    assert literal.mailfrom.status == AuthStatus.FAIL


def test_valid_domain() -> None:
    assert valid_domain("example.com")
    assert valid_domain("example.com.")
    assert not valid_domain("localhost")
    assert not valid_domain("a..example.com")
    assert not valid_domain("[192.0.2.1]")
    assert not valid_domain("x" * 64 + ".example.com")

"""DnsResolver against the real test DNS server on 127.0.0.1 (UDP and TCP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from milter.dns.cache import DnsCache
from milter.dns.resolver import DnsAnswer, DnsError, DnsServFail, DnsTimeout
from milter.dns.stub import DnsResolver, parse_nameserver
from tests.support.dnsserver import DnsTestServer
from tests.support.fixtures import dns_resolver, dns_server

__all__ = ["dns_resolver", "dns_server"]  # imported fixtures


class Clock:
    """A hand-driven monotonic clock for the cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count(server: DnsTestServer, name: str, rdtype: str) -> int:
    return sum(1 for q in server.queries if (q.name, q.rdtype) == (name, rdtype))


async def test_record_text_forms(dns_server: DnsTestServer, dns_resolver: DnsResolver) -> None:
    dns_server.load(
        {
            "Example.COM": [
                ("A", "192.0.2.1"),
                ("A", "192.0.2.2"),
                ("AAAA", "2001:DB8:0:0::1"),
                ("MX", (10, "MX1.Example.com.")),
                ("TXT", ["v=spf1 ", "-all"]),
                ("TXT", "x" * 300),
            ],
            "1.2.0.192.in-addr.arpa": [("PTR", "Host.Example.com.")],
        }
    )
    a = await dns_resolver.query("example.com.", "A")
    assert sorted(a.records) == ["192.0.2.1", "192.0.2.2"]
    assert a == DnsAnswer("example.com", "A", a.records)
    assert (await dns_resolver.query("example.com", "AAAA")).records == ("2001:db8::1",)
    assert (await dns_resolver.query("example.com", "MX")).records == ("10 mx1.example.com",)
    txt = (await dns_resolver.query("example.com", "TXT")).records
    assert sorted(txt) == sorted(["v=spf1 -all", "x" * 300])  # strings glued, long kept whole
    ptr = await dns_resolver.query("1.2.0.192.in-addr.arpa", "PTR")
    assert ptr.records == ("host.example.com",)


async def test_nxdomain_nodata_and_cname(
    dns_server: DnsTestServer, dns_resolver: DnsResolver
) -> None:
    dns_server.load(
        {
            "a.example.com": [("A", "192.0.2.1")],
            "alias.example.com": [("CNAME", "a.example.com")],
        }
    )
    nx = await dns_resolver.query("nope.example.com", "A")
    assert nx.nxdomain
    assert nx.records == ()
    nodata = await dns_resolver.query("a.example.com", "TXT")
    assert not nodata.nxdomain
    assert nodata.records == ()
    empty_non_terminal = await dns_resolver.query("example.com", "A")
    assert not empty_non_terminal.nxdomain
    alias = await dns_resolver.query("alias.example.com", "A")
    assert alias.records == ("192.0.2.1",)


async def test_positive_answers_cached_for_their_ttl(dns_server: DnsTestServer) -> None:
    clock = Clock()
    resolver = DnsResolver([dns_server.address], timeout=0.5, cache=DnsCache(clock=clock))
    dns_server.add("ttl.example.com", "A", "192.0.2.1", ttl=30)
    first = await resolver.query("ttl.example.com", "A")
    dns_server.clear()
    dns_server.add("ttl.example.com", "A", "192.0.2.99", ttl=30)
    clock.now += 29
    assert await resolver.query("TTL.example.com.", "A") == first  # still cached
    assert count(dns_server, "ttl.example.com", "A") == 0
    clock.now += 2
    assert (await resolver.query("ttl.example.com", "A")).records == ("192.0.2.99",)
    assert count(dns_server, "ttl.example.com", "A") == 1


async def test_negative_answers_cached_per_soa_minimum_and_capped() -> None:
    with DnsTestServer(soa_ttl=300, soa_minimum=5) as server:
        clock = Clock()
        resolver = DnsResolver([server.address], timeout=0.5, cache=DnsCache(clock=clock))
        assert (await resolver.query("gone.example.com", "TXT")).nxdomain
        clock.now += 4
        await resolver.query("gone.example.com", "TXT")
        assert count(server, "gone.example.com", "TXT") == 1
        clock.now += 2  # past the SOA MINIMUM of 5 s (RFC 2308 §5)
        await resolver.query("gone.example.com", "TXT")
        assert count(server, "gone.example.com", "TXT") == 2
    with DnsTestServer(soa_ttl=3600, soa_minimum=3600) as server:
        clock = Clock()
        cache = DnsCache(clock=clock, max_negative_ttl=10)
        resolver = DnsResolver([server.address], timeout=0.5, cache=cache)
        await resolver.query("gone.example.com", "TXT")
        clock.now += 11  # the cap wins over the SOA's hour
        await resolver.query("gone.example.com", "TXT")
        assert count(server, "gone.example.com", "TXT") == 2


def test_cache_is_bounded_lru() -> None:
    cache = DnsCache(max_entries=2, clock=Clock())
    answers = [DnsAnswer(f"n{i}.example", "A", ("192.0.2.1",)) for i in range(3)]
    cache.put(answers[0], 60)
    cache.put(answers[1], 60)
    assert cache.get("n0.example", "A") == answers[0]  # n0 now most recently used
    cache.put(answers[2], 60)
    assert len(cache) == 2
    assert cache.get("n1.example", "A") is None
    assert cache.get("n0.example", "A") == answers[0]
    cache.put(DnsAnswer("z.example", "A", ()), 0)  # zero TTL: not cached
    assert cache.get("z.example", "A") is None


async def test_timeout_raises_dns_timeout(dns_server: DnsTestServer) -> None:
    dns_server.fault("slow.example.com", "timeout")
    resolver = DnsResolver([dns_server.address], timeout=0.3)
    with pytest.raises(DnsTimeout):  # the server never answers: the timeout ends the wait
        await resolver.query("slow.example.com", "A")


async def test_servfail_raises_dns_servfail(
    dns_server: DnsTestServer, dns_resolver: DnsResolver
) -> None:
    dns_server.add("broken.example.com", "TXT", "v=spf1 -all")
    dns_server.fault("broken.example.com", "servfail", "TXT")
    with pytest.raises(DnsServFail):
        await dns_resolver.query("broken.example.com", "TXT")
    dns_server.add("broken.example.com", "A", "192.0.2.1")
    assert (await dns_resolver.query("broken.example.com", "A")).records == ("192.0.2.1",)


async def test_truncated_udp_answer_retried_over_tcp(
    dns_server: DnsTestServer, dns_resolver: DnsResolver
) -> None:
    dns_server.add("big.example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    dns_server.fault("big.example.com", "truncate")
    answer = await dns_resolver.query("big.example.com", "TXT")
    assert answer.records == ("v=spf1 ip4:192.0.2.0/24 -all",)
    transports = [q.transport for q in dns_server.queries if q.name == "big.example.com"]
    assert transports == ["udp", "tcp"]


async def test_oversized_answer_goes_over_tcp(
    dns_server: DnsTestServer, dns_resolver: DnsResolver
) -> None:
    for i in range(8):
        dns_server.add("huge.example.com", "TXT", f"{i}" + "y" * 400)
    answer = await dns_resolver.query("huge.example.com", "TXT")
    assert len(answer.records) == 8
    assert "tcp" in {q.transport for q in dns_server.queries}


async def test_only_dns_errors_escape(dns_resolver: DnsResolver) -> None:
    with pytest.raises(DnsError):
        await dns_resolver.query("a..b.example", "A")
    with pytest.raises(DnsError):
        await dns_resolver.query("x" * 64 + ".example", "A")
    with pytest.raises(DnsError):
        await dns_resolver.query("example.com", "NOSUCHTYPE")


async def test_unreachable_server_is_a_dns_error() -> None:
    with DnsTestServer() as server:
        address = server.address
    resolver = DnsResolver([address], timeout=0.3)  # nobody listens there any more
    with pytest.raises(DnsError):
        await resolver.query("example.com", "A")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_parse_nameserver(spec: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(spec) == expected


@pytest.mark.parametrize("spec", ["ns.example.com", "127.0.0.1:0", "[::1", "1.2.3.4:x"])
def test_parse_nameserver_rejects(spec: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValueError is the documented contract
        parse_nameserver(spec)


def test_configured_nameservers(dns_server: DnsTestServer) -> None:
    assert DnsResolver([dns_server.address]).nameservers == [dns_server.address]
    if not Path("/etc/resolv.conf").exists():
        pytest.skip("no /etc/resolv.conf on this machine")
    assert DnsResolver().nameservers  # the system's servers, read but never queried here

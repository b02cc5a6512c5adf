"""DNS queries, timeouts and cache hits are counted, against a real DNS server on loopback."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from milter.dns.resolver import DnsTimeout
from milter.dns.stub import DnsResolver
from milter.ops.metrics import record_dns_cache_hit
from tests.support.dnsserver import DnsTestServer


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_queries_answers_nxdomain_timeouts_and_cache_hits(
    dns_server: DnsTestServer, dns_resolver: DnsResolver
) -> None:
    record_dns_cache_hit()  # the metrics exist from here on, in this process
    dns_server.add("mail.example.fr", "TXT", "v=spf1 -all", ttl=300)
    dns_server.fault("slow.example.fr", "timeout")
    before = {
        result: count("tocsin_dns_queries_total", result=result)
        for result in ("answer", "nxdomain", "timeout")
    }
    hits = count("tocsin_dns_cache_hits_total")
    await dns_resolver.query("mail.example.fr", "TXT")
    await dns_resolver.query("mail.example.fr", "TXT")  # from the cache
    await dns_resolver.query("absent.example.fr", "TXT")
    with pytest.raises(DnsTimeout):
        await dns_resolver.query("slow.example.fr", "TXT")
    assert count("tocsin_dns_queries_total", result="answer") == before["answer"] + 1
    assert count("tocsin_dns_queries_total", result="nxdomain") == before["nxdomain"] + 1
    assert count("tocsin_dns_queries_total", result="timeout") == before["timeout"] + 1
    assert count("tocsin_dns_cache_hits_total") == hits + 1

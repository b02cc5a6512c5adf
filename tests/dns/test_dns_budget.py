"""BudgetResolver (per-message allowance) and the FakeResolver test double."""

from __future__ import annotations

import pytest

from milter.auth.spf import check_host
from milter.dns.budget import BudgetResolver, DnsBudgetExceeded
from milter.dns.fake import FakeResolver
from milter.dns.resolver import DnsServFail, DnsTimeout
from milter.dns.stub import DnsResolver
from tests.support.dnsserver import DnsTestServer
from tests.support.fixtures import dns_server

__all__ = ["dns_server"]  # imported fixture


async def test_query_count_budget() -> None:
    inner = FakeResolver({("example.com", "A"): ["192.0.2.1"]})
    budget = BudgetResolver(inner, total_seconds=60, max_queries=2)
    await budget.query("example.com", "A")
    await budget.query("example.com", "A")
    assert budget.exhausted
    with pytest.raises(DnsBudgetExceeded):
        await budget.query("example.com", "A")
    assert len(inner.queries) == 2  # the third never reached the inner resolver


async def test_time_budget_spent_before_query() -> None:
    now = [0.0]
    inner = FakeResolver({("example.com", "A"): ["192.0.2.1"]})
    budget = BudgetResolver(inner, total_seconds=5, max_queries=100, clock=lambda: now[0])
    assert (await budget.query("example.com", "A")).records == ("192.0.2.1",)
    now[0] = 5.0
    assert budget.remaining_seconds == 0
    with pytest.raises(DnsTimeout):
        await budget.query("example.com", "A")
    assert len(inner.queries) == 1


async def test_time_budget_cuts_a_slow_query_short(dns_server: DnsTestServer) -> None:
    dns_server.fault("slow.example.com", "timeout")
    inner = DnsResolver([dns_server.address], timeout=5.0)  # would wait 5 s on its own
    budget = BudgetResolver(inner, total_seconds=0.3, max_queries=10)
    # the inner resolver alone would end in DnsTimeout after 5 s: the budget's own
    # exception proves the budget, not the inner timeout, ended the wait
    with pytest.raises(DnsBudgetExceeded):
        await budget.query("slow.example.com", "TXT")
    with pytest.raises(DnsTimeout):  # and it stays spent
        await budget.query("fast.example.com", "TXT")


async def test_spent_budget_makes_spf_temperror() -> None:
    inner = FakeResolver({("example.com", "TXT"): ["v=spf1 a mx -all"]})
    result = await check_host(
        "192.0.2.1", "example.com", "a@example.com", "mx.example.com",
        BudgetResolver(inner, total_seconds=60, max_queries=2),
    )  # fmt: skip
    assert result.status == "temperror"
    assert "budget" in result.reason or "queries" in result.reason


async def test_fake_resolver_answers_errors_and_logs() -> None:
    fake = FakeResolver(
        {
            ("Example.com.", "a"): ["192.0.2.1"],
            ("example.com", "TXT"): "v=spf1 -all",
            ("bad.example", "MX"): DnsServFail("boom"),
        }
    )
    assert (await fake.query("EXAMPLE.com", "A")).records == ("192.0.2.1",)
    assert (await fake.query("example.com", "TXT")).records == ("v=spf1 -all",)
    nodata = await fake.query("example.com", "MX")
    assert nodata.records == ()
    assert not nodata.nxdomain
    assert (await fake.query("other.example", "A")).nxdomain
    with pytest.raises(DnsServFail):
        await fake.query("bad.example", "MX")
    assert fake.queries[0] == ("example.com", "A")
    assert len(fake.queries) == 5

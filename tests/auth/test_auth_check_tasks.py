"""The auth check runs SPF, DKIM and ARC concurrently (their DNS queries in flight
together, in the order SPF, DKIM, ARC) and leaves no task behind when it is cancelled;
``_in_order``, which runs them, is ``asyncio.gather`` with fewer tasks."""

from __future__ import annotations

import asyncio

import pytest

from milter.checks.auth import AuthCheck, _in_order
from milter.checks.base import CheckContext
from milter.checks.claim import find_claim
from milter.dns.fake import FakeResolver
from milter.dns.resolver import DnsAnswer
from milter.mime.parse import parse_message
from milter.model.auth import AuthResult, AuthStatus
from milter.model.envelope import Envelope
from milter.policy.model import Policy
from tests.auth.test_dkimpy_fast import DOMAIN, SEALER, _sealed

ENVELOPE = Envelope(
    client_ip="192.0.2.10",
    helo="mail.example.net",
    mail_from="bounce@example.net",
    rcpts=("assure@example.org",),
)


class SlowResolver:
    """FakeResolver's answers, each after a few turns of the event loop; records the
    queries in the order they were asked and how many were in flight at once."""

    def __init__(self, records: dict[str, str], *, hold: bool = False) -> None:
        self.hold = asyncio.Event() if hold else None  # answers wait for it when set
        self.fake = FakeResolver({(name, "TXT"): text for name, text in records.items()})
        self.fake.add("example.net", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
        self.fake.add("mail.example.net", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
        self.asked: list[str] = []
        self.in_flight = 0
        self.most = 0

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        self.asked.append(name)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if self.hold is not None:
                await self.hold.wait()
            return await self.fake.query(name, rdtype)
        finally:
            self.in_flight -= 1


def _context(resolver: SlowResolver, policy: Policy) -> CheckContext:
    sealed, _ = _sealed(1, b"relaxed")
    mime = parse_message(sealed)
    return CheckContext(ENVELOPE, mime, policy, find_claim(mime, policy), resolver)


async def test_spf_dkim_and_arc_queries_are_concurrent_and_in_order(policy: Policy) -> None:
    _, records = _sealed(1, b"relaxed")
    resolver = SlowResolver(records)
    outcomes = await AuthCheck().run(_context(resolver, policy))
    results = [(r.method, r.result) for r in outcomes if isinstance(r, AuthResult)]
    assert results == [
        ("spf", AuthStatus.PASS),
        ("spf", AuthStatus.PASS),
        ("dkim", AuthStatus.PASS),
        ("arc", AuthStatus.PASS),
        ("dmarc", AuthStatus.NONE),  # no DMARC record for ameli.fr here
    ]
    assert resolver.asked[:3] == [
        "mail.example.net",  # SPF's first: HELO
        f"sel._domainkey.{DOMAIN}",
        f"arc._domainkey.{SEALER}",
    ]
    assert resolver.most == 3  # all three waiting for DNS at once


async def test_cancelled_check_leaves_no_task_running(policy: Policy) -> None:
    _, records = _sealed(1, b"relaxed")
    resolver = SlowResolver(records, hold=True)  # no answer comes
    check = asyncio.ensure_future(AuthCheck().run(_context(resolver, policy)))
    for _ in range(50):
        await asyncio.sleep(0)
    assert resolver.in_flight == 3
    check.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert check.cancelled()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert resolver.in_flight == 0


async def _answer(value: str, waits: int, log: list[str]) -> str:
    log.append(f"{value} starts")
    for _ in range(waits):
        await asyncio.sleep(0)
    log.append(f"{value} ends")
    return value


async def test_in_order_runs_here_until_one_waits_then_starts_the_rest() -> None:
    log: list[str] = []
    coros = [_answer("a", 0, log), _answer("b", 2, log), _answer("c", 0, log)]
    assert await _in_order(coros) == ["a", "b", "c"]
    # a never waits: b runs next, here; c starts (a task) when b first waits
    assert log == ["a starts", "a ends", "b starts", "c starts", "c ends", "b ends"]


async def test_a_timeout_inside_a_coroutine_run_here_stays_its_own() -> None:
    async def times_out() -> str:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            return "timed out"
        return "answered"

    log: list[str] = []
    assert await _in_order([times_out(), _answer("b", 1, log)]) == ["timed out", "b"]


async def test_a_failure_cancels_the_tasks_started() -> None:
    async def fails() -> str:
        await asyncio.sleep(0)
        raise ValueError("bug")

    held = asyncio.Event()

    async def waits() -> str:
        await held.wait()
        return "never"

    with pytest.raises(ValueError, match="bug"):
        await _in_order([fails(), waits()])
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelling_reaches_the_coroutine_run_here() -> None:
    async def busy() -> str:
        for _ in range(1000):
            await asyncio.sleep(0)  # a bare yield: nothing to cancel but the coroutine
        return "finished"

    log: list[str] = []
    running = asyncio.ensure_future(_in_order([busy(), _answer("b", 0, log)]))
    for _ in range(5):
        await asyncio.sleep(0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

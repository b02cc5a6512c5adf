"""What the in-process engine benchmarks share: the corpus's records on the loopback DNS
server, and the envelope each corpus message arrives with."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from benchmarks.harness.corpus import BenchMessage, Keys, zone
from milter.dns.resolver import Resolver
from milter.engine import scan
from milter.model.envelope import Envelope
from milter.policy.model import Policy
from tests.support.dnsserver import DnsTestServer


@contextmanager
def corpus_dns(keys: Keys, messages: Iterable[BenchMessage]) -> Iterator[DnsTestServer]:
    """A loopback DNS server answering the corpus's SPF/DKIM/DMARC records (long TTLs, so a
    resolver's cache stays warm for the whole run); stopped on exit."""
    with DnsTestServer(zone(keys, messages), ttl=3600, soa_ttl=3600, soa_minimum=3600) as dns:
        yield dns


def envelope_of(message: BenchMessage) -> Envelope:
    """The SMTP envelope the message is scanned with."""
    return Envelope(
        client_ip=message.client_ip,
        helo=message.helo,
        mail_from=message.mail_from,
        rcpts=(message.rcpt,),
    )


async def warm_up(
    messages: Sequence[BenchMessage],
    envelopes: Sequence[Envelope],
    policy: Policy,
    resolver: Resolver,
) -> None:
    """One scan of every message: the resolver's cache and the lazily compiled policy filled
    before anything is timed."""
    for message, envelope in zip(messages, envelopes, strict=True):
        await scan(message.raw, envelope, policy, resolver)


def kind_table(
    table: dict[str, dict[str, list[float]]], columns: Sequence[str], rounds: int = 1
) -> list[str]:
    """Lines of a table of per-kind medians (one row per message kind, then every kind's
    median and mean), ``table[kind][column]`` holding one value per scan."""
    width = max(7, *(len(c) for c in columns))
    lines = [f"{'kind':11} {'n':>4} " + " ".join(f"{c:>{width}}" for c in columns)]
    everything: dict[str, list[float]] = defaultdict(list)
    for kind in sorted(table):
        row = table[kind]
        for column in columns:
            everything[column] += row[column]
        cells = " ".join(f"{statistics.median(row[c]):{width}.2f}" for c in columns)
        lines.append(f"{kind:11} {len(row[columns[-1]]) // rounds:4} {cells}")
    count = len(everything[columns[-1]]) // rounds
    for label, average in (("all", statistics.median), ("all (mean)", statistics.mean)):
        cells = " ".join(f"{average(everything[c]):{width}.2f}" for c in columns)
        lines.append(f"{label:11} {count:4} {cells}")
    return lines

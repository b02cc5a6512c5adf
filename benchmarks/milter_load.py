"""Load benchmark: Tocsin beside a do-nothing milter, with real DNS, at concurrency 1/8/32.

One run, one machine, everything on loopback:
  * a deterministic corpus (``benchmarks/harness/corpus.py``: newsletters with many links,
    plain mail, 200 KB attachments, DKIM-signed brand mail, ARC-sealed list mail, spoofs,
    lookalikes) and a real DNS server (``tests/support/dnsserver.py``) serving its SPF,
    DKIM and DMARC records;
  * ``tocsin serve --workers W --nameserver <that server>`` and a do-nothing milter (same
    server and codec, a handler that accepts without scanning), each in its own processes;
  * a load client opening one milter connection per message, as Postfix does.

Printed per concurrency level and system: messages/s, p50/p99 latency (connect to final
reply), CPU ms per message of the server's processes (from /proc), and the machine's load
(busy cores from /proc/stat, 1-minute load average). "cached" passes re-use the corpus's
few dozen domains (DNS answers come from Tocsin's cache after the warm-up); "uncached"
passes give every message its own envelope domain and DKIM selector, so SPF and key
lookups really go to the DNS server. With Postfix installed and root, the same messages
also go through a private Postfix (none / do-nothing / Tocsin as its milter), and the p50
through Postfix at C=1 is printed beside the direct p50: a return of the ~40 ms delayed-ACK
stall (docs/performance.md) shows there; so is the SMTP filter's p10 beside the milter's.
With Debian's rspamd installed, rspamd (the reference #15's own table measured: SPF, DKIM,
DMARC, ARC, its phishing, URL and MIME rules, as the package ships them) runs as a milter
beside Tocsin on the first ``--rspamd-messages`` messages, and a line compares their CPU
per message.

This machine's speed drifts from one minute to the next by more than most changes are
worth, and one pass of each system is one sample of that drift: ``--rounds N`` measures
every cached pass N times, the systems in alternating order, and the targets line gives
the median of the N same-round ratios with their range (uncached passes run in the first
round only: their domains are cached after it).

Usage (from a clean clone, after ``pip install -e '.[test,bench]'``):
    .venv/bin/python benchmarks/milter_load.py [--messages 2000] [--levels 1,8,32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.corpus import BenchMessage, generate, make_keys, zone  # noqa: E402
from benchmarks.harness.frontends import (  # noqa: E402
    Front,
    MilterFront,
    SmtpFilterFront,
    SmtpFront,
)
from benchmarks.harness.servers import (  # noqa: E402
    MachineSample,
    Server,
    free_port,
    next_hop_sink,
    null_server,
    rspamd_server,
    rspamd_version,
    rss_kib,
    tocsin_server,
)
from tests.support.dnsserver import DnsTestServer  # noqa: E402


@dataclass
class Row:
    """One measured pass."""

    section: str
    system: str
    dns: str
    concurrency: int
    messages: int
    rate: float
    p10_ms: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float | None
    errors: int
    busy_cores: float
    load1: float
    round: int = 1


@dataclass
class Setup:
    """A system under test: how to deliver, and which server's CPU to count (if any)."""

    system: str
    dns: str
    front: Front
    server: Server | None


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _drive(
    front: Front, messages: Sequence[BenchMessage], concurrency: int
) -> tuple[float, list[float], int]:
    queue = list(reversed(messages))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            message = queue.pop()
            started = time.perf_counter()
            try:
                await front.deliver(message)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors += 1
                if errors <= 3:
                    print(f"  ! {front.label}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


def measure(
    section: str,
    setup: Setup,
    messages: Sequence[BenchMessage],
    concurrency: int,
    round_: int = 1,
) -> Row:
    """One pass of ``messages`` through ``setup`` at ``concurrency`` (in round ``round_``)."""
    cpu_before = setup.server.cpu() if setup.server else 0.0
    machine = MachineSample.now()
    elapsed, latencies, errors = asyncio.run(_drive(setup.front, messages, concurrency))
    after = MachineSample.now()
    cpu = (setup.server.cpu() - cpu_before) if setup.server else None
    return Row(
        section,
        setup.system,
        setup.dns,
        concurrency,
        len(messages),
        len(messages) / elapsed,
        _pct(latencies, 0.10),
        statistics.median(latencies) if latencies else 0.0,
        _pct(latencies, 0.99),
        cpu * 1000 / len(messages) if cpu is not None else None,
        errors,
        machine.busy_cores(after),
        after.load1,
        round_,
    )


HEADER = (
    f"{'conc':>4}  {'system':<16} {'dns':<9} {'msg/s':>7} {'p10 ms':>7} {'p50 ms':>8} "
    f"{'p99 ms':>8} "
    f"{'cpu ms/msg':>10} {'errors':>6} {'busy cores':>10} {'load1':>6} {'round':>5}"
)


def show(row: Row) -> None:
    cpu = f"{row.cpu_ms:>10.2f}" if row.cpu_ms is not None else f"{'-':>10}"
    print(
        f"{row.concurrency:>4}  {row.system:<16} {row.dns:<9} {row.rate:>7.1f} "
        f"{row.p10_ms:>7.2f} {row.p50_ms:>8.2f} {row.p99_ms:>8.2f} {cpu} {row.errors:>6} "
        f"{row.busy_cores:>10.2f} {row.load1:>6.2f} {row.round:>5}",
        flush=True,
    )


def _postfix_reason(requested: bool) -> str | None:
    if not requested:
        return "--no-postfix"
    from tests.support.postfix import postfix_missing_reason

    return postfix_missing_reason()


def _start_postfix(root: Path, milter: str) -> object:
    from tests.support.postfix import PostfixInstance

    instance = PostfixInstance(root, milter, sink_dump=False)
    instance.start()
    return instance


def run(args: argparse.Namespace) -> list[Row]:
    """The whole benchmark; prints as it goes and returns every row."""
    levels = [int(x) for x in args.levels.split(",")]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # Postfix's unprivileged processes must reach their directories
    keys = make_keys(work / "keys")
    corpus = generate(args.messages, args.seed, keys)
    uncached = {
        level: generate(args.uncached_messages, args.seed + level, keys, unique=f"c{level}")
        for level in levels
    }
    records = zone(keys, [m for batch in uncached.values() for m in batch])
    rows: list[Row] = []
    stops: list[Callable[[], None]] = []
    dns = DnsTestServer(records, ttl=3600, soa_ttl=3600, soa_minimum=3600).start()
    stops.append(dns.stop)
    try:
        null = null_server(args.workers).start()
        stops.append(null.stop)
        sink = next_hop_sink()
        stops.append(sink.stop)
        smtp_port = free_port()
        smtp_filter = ["--smtp", f"127.0.0.1:{smtp_port}", "--next-hop", f"127.0.0.1:{sink.port}"]
        tocsin = tocsin_server(args.workers, dns.address, work / "quarantine", smtp_filter)
        tocsin.start()
        stops.append(tocsin.stop)
        size = sum(len(m.raw) for m in corpus) / len(corpus) / 1024
        kinds: dict[str, int] = {}
        for message in corpus:
            kinds[message.kind] = kinds.get(message.kind, 0) + 1
        print(f"corpus: {len(corpus)} messages, mean {size:.1f} KiB, seed {args.seed}: ", end="")
        print(", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        print(
            f"servers: {args.workers} worker(s) each; DNS server {dns.address} "
            f"({len(records)} names); one milter connection per message"
        )
        print(f"machine: {MachineSample.now().load1:.2f} load average before the run")
        print(HEADER)
        direct = {
            "null": Setup("null milter", "-", MilterFront("null", null.port), null),
            "tocsin": Setup("tocsin", "cached", MilterFront("tocsin", tocsin.port), tocsin),
            # the same tocsin serve, through its SMTP filter front-end, relaying to smtp-sink
            "tocsin-smtp": Setup(
                "tocsin-smtp", "cached", SmtpFilterFront("tocsin-smtp", smtp_port), tocsin
            ),
        }
        rows += _direct(direct, corpus[: args.warmup], corpus, uncached, args.rounds)
        rows += _reference(
            args, work, corpus, nameserver=dns.address, tocsin=direct["tocsin"], levels=levels
        )
        reason = _postfix_reason(args.postfix)
        if reason is None:
            rows += _through_postfix(args, work, corpus, {"null": null, "tocsin": tocsin}, rows)
        else:
            print(f"through Postfix: skipped ({reason})")
        _summary(rows, (null, tocsin))
    finally:
        for stop in reversed(stops):
            stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def _direct(
    direct: dict[str, Setup],
    warm: Sequence[BenchMessage],
    corpus: Sequence[BenchMessage],
    uncached: dict[int, list[BenchMessage]],
    rounds: int = 1,
) -> list[Row]:
    """Every system straight (milter or SMTP), cached, per level and round (the systems'
    order reversed every other round), then Tocsin uncached once per level."""
    rows: list[Row] = []
    for level, batch in uncached.items():
        for round_ in range(1, rounds + 1):
            order = list(direct.values())
            for setup in order if round_ % 2 else reversed(order):
                asyncio.run(_drive(setup.front, warm, min(level, 8)))
                rows.append(measure("direct", setup, corpus, level, round_))
                show(rows[-1])
        if batch:  # --uncached-messages 0: no uncached pass
            setup = Setup("tocsin", "uncached", direct["tocsin"].front, direct["tocsin"].server)
            rows.append(measure("direct", setup, batch, level))
            show(rows[-1])
    smtp_stall_check([r for r in rows if r.concurrency == 1])
    return rows


def _reference(
    args: argparse.Namespace,
    work: Path,
    corpus: Sequence[BenchMessage],
    *,
    nameserver: str,
    tocsin: Setup,
    levels: Sequence[int],
) -> list[Row]:
    """rspamd (Debian's package, as #15's own table measured it) beside Tocsin on the same
    first ``--rspamd-messages`` messages, per level and round (the two in alternating
    order), then the line comparing their CPU per message. rspamd has no DNS cache of its
    own (it expects a caching resolver beside it): its lookups all reach the DNS server,
    which answers from this process (its CPU is not counted as rspamd's)."""
    version = rspamd_version() if args.rspamd_messages > 0 else None
    if version is None:
        why = "--rspamd-messages 0" if args.rspamd_messages <= 0 else "rspamd not installed"
        print(f"reference, rspamd: skipped ({why})")
        return []
    messages = list(corpus[: args.rspamd_messages])
    server = rspamd_server(
        args.workers, nameserver, work / "rspamd", hyperscan=not args.rspamd_pcre
    )
    print(
        f"reference ({version}, {args.workers} normal worker(s) behind its milter proxy, "
        f"{len(messages)} messages): starting",
        flush=True,
    )
    rows: list[Row] = []
    try:
        server.start()
        rspamd = Setup("rspamd", "uncached", MilterFront("rspamd", server.port), server)
        for level in levels:
            for round_ in range(1, args.rounds + 1):
                pair = [tocsin, rspamd] if round_ % 2 else [rspamd, tocsin]
                for setup in pair:
                    asyncio.run(_drive(setup.front, messages[: args.warmup], min(level, 8)))
                    rows.append(measure("reference", setup, messages, level, round_))
                    show(rows[-1])
    finally:
        server.stop()
    reference_line(rows, version)
    return rows


def reference_line(rows: Sequence[Row], version: str) -> None:
    """Tocsin's CPU per message and msg/s against rspamd's on the same messages, per level:
    the median over the rounds, and Tocsin's share of rspamd's CPU."""
    parts = []
    levels = sorted({r.concurrency for r in rows if r.section == "reference"})
    for conc in levels:
        mine = [
            r for r in rows if (r.section, r.system, r.concurrency) == ("reference", "tocsin", conc)
        ]
        theirs = [
            r for r in rows if (r.section, r.system, r.concurrency) == ("reference", "rspamd", conc)
        ]
        a = [r.cpu_ms for r in mine if r.cpu_ms is not None]
        b = [r.cpu_ms for r in theirs if r.cpu_ms is not None]
        if not a or not b:
            continue
        cpu_a, cpu_b = statistics.median(a), statistics.median(b)
        rate_a = statistics.median(r.rate for r in mine)
        rate_b = statistics.median(r.rate for r in theirs)
        parts.append(
            f"C={conc} CPU ms/msg tocsin {cpu_a:.2f}, rspamd {cpu_b:.2f} "
            f"({100 * cpu_a / cpu_b:.0f} %), msg/s {rate_a:.1f} against {rate_b:.1f}"
        )
    if parts:
        print(f"reference, tocsin against {version} on the same messages: " + "; ".join(parts))


def _through_postfix(
    args: argparse.Namespace,
    work: Path,
    corpus: Sequence[BenchMessage],
    servers: dict[str, Server],
    direct: Sequence[Row],
) -> list[Row]:
    messages = list(corpus[: args.postfix_messages])
    print(f"through Postfix ({len(messages)} messages over SMTP, Postfix relays to smtp-sink):")
    print(HEADER)
    rows: list[Row] = []
    systems: list[tuple[str, str, Server | None]] = [
        ("postfix", "", None),
        ("postfix+null", servers["null"].spec, servers["null"]),
        ("postfix+tocsin", servers["tocsin"].spec, servers["tocsin"]),
    ]
    for round_ in range(1, args.rounds + 1):
        for name, milter, server in systems if round_ % 2 else reversed(systems):
            instance = _start_postfix(work / f"postfix-{name}-{round_}", milter)
            try:
                front = SmtpFront(name, instance.smtpd_port)  # type: ignore[attr-defined]
                setup = Setup(name, "cached" if "tocsin" in name else "-", front, server)
                asyncio.run(_drive(front, messages[: args.warmup], 1))
                for level in (1, 8):
                    rows.append(measure("postfix", setup, messages, level, round_))
                    show(rows[-1])
            finally:
                instance.stop()  # type: ignore[attr-defined]
    stall_check(direct, rows)
    return rows


def _summary(rows: Sequence[Row], servers: Sequence[Server]) -> None:
    throughput_targets(rows)
    print(
        "memory: RSS after the run (KiB): "
        + ", ".join(f"{s.name} {pid}={rss_kib(pid)}" for s in servers for pid in s.pids())
    )


def _cached(rows: Sequence[Row], section: str, system: str, conc: int) -> dict[int, Row]:
    """The cached (or DNS-less) rows of one system at one level, by round."""
    return {
        r.round: r
        for r in rows
        if (r.section, r.system, r.concurrency) == (section, system, conc)
        and r.dns in ("cached", "-")
    }


def _spread(values: Sequence[float], unit: str) -> str:
    """``values``' median, and with more than one their range and count."""
    digits = 0 if unit == "%" else 2
    median = f"{statistics.median(values):.{digits}f} {unit}"
    if len(values) < 2:
        return median
    return f"{median} [{min(values):.{digits}f}-{max(values):.{digits}f}, {len(values)} rounds]"


def throughput_targets(rows: Sequence[Row]) -> None:
    """#15's throughput targets: Tocsin's msg/s against the do-nothing milter's in the same
    round (the median of the rounds' ratios, and their range), and the servers' CPU per
    message at C=1."""
    parts = []
    for section, mine, null, levels, goal in (
        ("direct", "tocsin", "null milter", (8, 32), 50),
        ("postfix", "postfix+tocsin", "postfix+null", (1, 8), 80),
    ):
        for conc in levels:
            a, b = _cached(rows, section, mine, conc), _cached(rows, section, null, conc)
            ratios = [100 * a[n].rate / b[n].rate for n in sorted(a) if n in b and b[n].rate]
            if ratios:
                parts.append(f"{section} C={conc} {_spread(ratios, '%')} (target {goal} %)")
    if parts:
        print("throughput, tocsin / do-nothing milter msg/s: " + "; ".join(parts))
    cpu = []
    for system in ("tocsin", "null milter"):
        found = _cached(rows, "direct", system, 1).values()
        values = [r.cpu_ms for r in found if r.cpu_ms is not None]
        if values:
            cpu.append(f"{system} {_spread(values, 'ms')}")
    if cpu:
        print("cpu per message at C=1 (server processes, cached): " + "; ".join(cpu))


STALL_MS = 30.0
"""A delayed-ACK stall costs ~40 ms a message; anything added past this at p10 is flagged."""


def stall_check(direct: Sequence[Row], through: Sequence[Row]) -> None:
    """At C=1, what each milter adds through Postfix beyond Postfix alone and beyond its
    own direct latency, at p10 (the stall shows there even under load) and p50."""
    alone = next((r for r in through if r.system == "postfix" and r.concurrency == 1), None)
    for system, via in (("null milter", "postfix+null"), ("tocsin", "postfix+tocsin")):
        d = next((r for r in direct if r.system == system and r.concurrency == 1), None)
        p = next((r for r in through if r.system == via and r.concurrency == 1), None)
        if d is None or p is None or alone is None:
            continue
        extra = p.p10_ms - alone.p10_ms - d.p10_ms
        verdict = f"STALL? +{extra:.1f} ms unexplained" if extra > STALL_MS else "no stall"
        print(
            f"stall check at C=1: {system} p10/p50 direct {d.p10_ms:.1f}/{d.p50_ms:.1f} ms, "
            f"Postfix alone {alone.p10_ms:.1f}/{alone.p50_ms:.1f}, Postfix with it "
            f"{p.p10_ms:.1f}/{p.p50_ms:.1f}: {verdict} (p10 with it - alone - direct "
            f"= {extra:+.1f} ms, flagged past {STALL_MS:g})"
        )


def smtp_stall_check(direct: Sequence[Row]) -> None:
    """At C=1, what the SMTP filter adds over the milter front-end on the same engine, at
    p10: its own round trips (client and next hop, ~1-2 ms on loopback), not a ~40 ms
    Nagle/delayed-ACK wait (a reply written in pieces on a socket without TCP_NODELAY)."""
    milter = next((r for r in direct if r.system == "tocsin" and r.dns == "cached"), None)
    smtp = next((r for r in direct if r.system == "tocsin-smtp"), None)
    if milter is None or smtp is None or milter.concurrency != 1 or smtp.concurrency != 1:
        return
    extra = smtp.p10_ms - milter.p10_ms
    verdict = f"STALL? +{extra:.1f} ms unexplained" if extra > STALL_MS else "no stall"
    print(
        f"stall check at C=1: tocsin-smtp p10/p50 {smtp.p10_ms:.1f}/{smtp.p50_ms:.1f} ms, "
        f"tocsin milter {milter.p10_ms:.1f}/{milter.p50_ms:.1f}: {verdict} "
        f"(p10 smtp - milter = {extra:+.1f} ms, flagged past {STALL_MS:g})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="cached-pass corpus size")
    parser.add_argument("--uncached-messages", type=int, default=400, help="per level")
    parser.add_argument("--postfix-messages", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100, help="messages sent before a pass")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument(
        "--rounds", type=int, default=1, help="cached passes per system and level (median ratio)"
    )
    parser.add_argument(
        "--rspamd-messages",
        type=int,
        default=100,
        help="messages for the rspamd reference passes (0: none; skipped without rspamd)",
    )
    parser.add_argument(
        "--rspamd-pcre",
        action="store_true",
        help="rspamd without hyperscan: starts in seconds, scans slower (smoke tests only)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-postfix", dest="postfix", action="store_false")
    parser.add_argument("--workdir", help="keep keys, quarantine and Postfix dirs here")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    rows = run(args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU of the whole engine per message, as a distribution: median, mean, p90, p99, per kind.

In process, over the load benchmark's corpus (``benchmarks/harness/corpus.py``) with its
records served by the loopback DNS server: one warm-up pass fills the resolver's cache and
the lazy compiled policy, then each message's ``scan()`` (parse, claim, checks, decide,
plan) is timed with ``time.thread_time`` for ``--rounds`` passes. The DNS server answers
from another thread, whose CPU is not counted. ``benchmarks/engine_breakdown.py`` splits the
same work by stage; this script gives the tail (#15's p99 target) and ``--top`` names the
slowest messages. Compare trees by running it from each tree's root in turn, several times.

Usage: .venv/bin/python benchmarks/engine_cpu.py [--messages 300] [--rounds 2] [--top 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.corpus import generate, make_keys  # noqa: E402
from benchmarks.harness.inprocess import corpus_dns, envelope_of, warm_up  # noqa: E402
from milter.dns.stub import DnsResolver  # noqa: E402
from milter.engine import scan  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(args: argparse.Namespace) -> None:
    keys = make_keys(Path(args.keys))
    messages = generate(args.messages, keys=keys)
    policy = load_policy(None)
    per_kind: dict[str, list[float]] = defaultdict(list)
    timed: list[tuple[float, str, int, str]] = []
    with corpus_dns(keys, messages) as dns:
        resolver = DnsResolver([dns.address])
        envelopes = [envelope_of(m) for m in messages]
        await warm_up(messages, envelopes, policy, resolver)
        for _ in range(args.rounds):
            for index, (message, envelope) in enumerate(zip(messages, envelopes, strict=True)):
                start = time.thread_time()
                result = await scan(message.raw, envelope, policy, resolver)
                ms = (time.thread_time() - start) * 1000
                per_kind[message.kind].append(ms)
                timed.append((ms, message.kind, index, result.verdict.disposition.value))
    ordered = sorted(ms for ms, *_ in timed)
    print(
        f"all n={len(ordered)} median {statistics.median(ordered):.2f} "
        f"mean {statistics.mean(ordered):.2f} p90 {_quantile(ordered, 0.9):.2f} "
        f"p99 {_quantile(ordered, 0.99):.2f}"
    )
    for kind in sorted(per_kind):
        values = per_kind[kind]
        print(
            f"  {kind:11} n={len(values):4} median {statistics.median(values):6.2f} "
            f"mean {statistics.mean(values):6.2f}"
        )
    for ms, kind, index, disposition in sorted(timed, reverse=True)[: args.top]:
        print(f"  slowest {ms:7.2f} ms  {kind:11} message {index:4}  {disposition}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top", type=int, default=0, help="also list the slowest scans")
    parser.add_argument("--keys", default="/tmp/speedbench/keys")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Is the engine's CPU linear in message size and flat in the number of brands? (#15)

In-process ``engine.scan`` over messages built by the load benchmark's corpus generator
(``benchmarks/harness/corpus.py``), with their records served by the loopback DNS server
(cached: every message is scanned once to warm the resolver and the compiled policy, then
timed). CPU is ``time.process_time`` of this process (the DNS server's thread included,
which answers nothing once the cache is warm).

Two tables:

- **size**: for each kind (HTML newsletter with links, plain text, PDF attachment), CPU ms
  per message at doubling sizes and µs per KiB. Linear means the µs per KiB stays about
  the same as the size grows; ``growth`` is the µs/KiB at the largest size over the one at
  the smallest size above 16 KiB (1.0 = linear; > 1.5 would say something is quadratic).
- **brands**: the same mix of corpus messages with 0, 100, 500 and 2,000 extra brands
  (synthetic, each with names, tokens and domains) added by a policy directory; ``ratio``
  is the median CPU per message against the shipped brands alone (1.0 = flat).

Usage: .venv/bin/python benchmarks/scaling.py [--repeat 5] [--messages 100]
       [--brands 0,100,500,2000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.corpus import BenchMessage, generate, make_keys, sized, zone  # noqa: E402
from benchmarks.harness.inprocess import envelope_of  # noqa: E402
from milter.dns.stub import DnsResolver  # noqa: E402
from milter.engine import scan  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402
from milter.policy.model import Policy  # noqa: E402
from tests.support.dnsserver import DnsTestServer  # noqa: E402

SIZES: dict[str, tuple[int, ...]] = {
    "newsletter": (10_000, 20_000, 40_000, 80_000, 160_000, 320_000),
    "plain": (2_000, 8_000, 32_000, 128_000, 512_000),
    "attachment": (100_000, 400_000, 1_600_000),
}
QUICK_SIZES: dict[str, tuple[int, ...]] = {
    "newsletter": (10_000, 20_000),
    "plain": (2_000, 8_000),
    "attachment": (100_000,),
}


async def cpu_ms(
    messages: Sequence[BenchMessage], policy: Policy, resolver: DnsResolver
) -> list[float]:
    """CPU ms of one ``scan`` per message, after one warm-up scan of each."""
    envelopes = [envelope_of(m) for m in messages]
    for message, env in zip(messages, envelopes, strict=True):
        await scan(message.raw, env, policy, resolver)
    out: list[float] = []
    for message, env in zip(messages, envelopes, strict=True):
        start = time.process_time()
        await scan(message.raw, env, policy, resolver)
        out.append((time.process_time() - start) * 1000)
    return out


def brand_policy(directory: Path, count: int) -> Path:
    """A policy directory adding ``count`` synthetic brands to the shipped ones."""
    lines = ["brands:"]
    for i in range(count):
        lines += [
            f"  synthetic{i}:",
            f"    name: Caisse Régionale Numéro {i}",
            f"    domains: [caisse-regionale-{i}.fr, crn{i}.gouv.fr]",
            f"    names: [Caisse Régionale Numéro {i}, CRN {i}, Mutuelle Régionale {i}]",
            f"    tokens: [caisseregionale{i}, crn{i}]",
            "    never_asks: [bank_details, credentials]",
        ]
    path = directory / f"brands-{count}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "brands.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tocsin-scaling-") as work:
        await _measure(args, Path(work))


async def _measure(args: argparse.Namespace, work: Path) -> None:
    keys = make_keys(work / "keys")
    sizes = QUICK_SIZES if args.quick else SIZES
    by_size = {
        (kind, size): [sized(kind, size, keys=keys, seed=seed) for seed in range(args.repeat)]
        for kind, kind_sizes in sizes.items()
        for size in kind_sizes
    }
    mix = generate(args.messages, keys=keys)
    every = [m for group in by_size.values() for m in group] + mix
    counts = [int(n) for n in args.brands.split(",")]
    with DnsTestServer(zone(keys, every), ttl=3600, soa_ttl=3600, soa_minimum=3600) as dns:
        resolver = DnsResolver([dns.address])
        policy = load_policy(None)
        print("size: median CPU ms per message (engine.scan, cached loopback DNS)")
        print(f"{'kind':<11} {'bytes':>9} {'ms':>8} {'us/KiB':>8}")
        for kind in sizes:
            per_kib: list[tuple[int, float]] = []
            for size in sizes[kind]:
                group = by_size[(kind, size)]
                ms = statistics.median(await cpu_ms(group, policy, resolver))
                real = statistics.median(len(m.raw) for m in group)
                per_kib.append((int(real), ms * 1000 / (real / 1024)))
                print(f"{kind:<11} {real:>9.0f} {ms:>8.2f} {per_kib[-1][1]:>8.1f}")
            base = next((v for s, v in per_kib if s >= 16_384), per_kib[0][1])
            growth = per_kib[-1][1] / base
            print(f"{kind:<11} growth {growth:.2f} (us/KiB, largest / smallest from 16 KiB)")
        print()
        print(f"brands: median CPU ms per message over {len(mix)} corpus messages")
        print(f"{'extra brands':>12} {'median':>8} {'mean':>8} {'ratio':>6}")
        base_median = 0.0
        for count in counts:
            policy = load_policy(brand_policy(work, count) if count else None)
            times = await cpu_ms(mix, policy, resolver)
            median = statistics.median(times)
            base_median = base_median or median
            print(
                f"{count:>12} {median:>8.2f} {statistics.mean(times):>8.2f}"
                f" {median / base_median:>6.2f}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="messages per kind and size")
    parser.add_argument("--messages", type=int, default=100, help="corpus mix for the brands table")
    parser.add_argument("--brands", default="0,100,500,2000", help="extra brand counts")
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

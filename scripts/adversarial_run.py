#!/usr/bin/env python3
"""Scan the whole shared corpus plus a generated adversarial set; report what #17 asks.

Every message must get an answer (a verdict and a plan that applies) and no traceback;
the script prints the counts per verdict and per limit hit, the messages that failed (if
any), the slowest messages by process CPU time (wall time beside it: on a shared machine
wall time is mostly load, so the load average is printed too) and the peak RSS of the
process, and exits 1 on any failure.

Usage (from the repository root)::

    .venv/bin/python scripts/adversarial_run.py [--adversarial 3000] [--seed 17]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from milter.actions.apply import apply_plan  # noqa: E402
from milter.engine import scan  # noqa: E402
from milter.model.envelope import Envelope  # noqa: E402
from milter.model.limits import LIMIT_NAMES  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402
from tests.hostile.shapes import generate  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


_NOT_MAIL = frozenset({"domains", "auth"})  # corpus folders of lists and test suites


def corpus_messages(corpus: Path) -> Iterator[tuple[str, bytes]]:
    """Every message file of the corpus (ham is stored as .txt, phish as .eml...)."""
    for path in sorted(corpus.rglob("*")):
        rel = path.relative_to(corpus)
        if (
            path.is_file()
            and rel.parts[0] not in _NOT_MAIL
            and not path.name.startswith(".")
            and path.name not in ("README.md", "index.tsv")
        ):
            yield str(rel), path.read_bytes()


async def run(messages: Iterator[tuple[str, bytes]]) -> int:
    policy = load_policy(None)
    verdicts: Counter[str] = Counter()
    limits: Counter[str] = Counter()
    failures: list[str] = []
    timings: list[tuple[float, float, str, int]] = []
    seen = 0
    load_before = os.getloadavg()[0]
    for name, raw in messages:
        seen += 1
        started, cpu = time.perf_counter(), time.process_time()
        try:
            result = await scan(raw, Envelope(), policy)
            apply_plan(raw, result.plan)
            verdicts[str(result.verdict.disposition)] += 1
        except Exception:  # noqa: BLE001 - the point of the run: record, never stop
            failures.append(f"{name}: {traceback.format_exc(limit=3)}")
            continue
        hit = {str(f.evidence.get("limit")) for f in result.verdict.findings}
        limits.update(hit & set(LIMIT_NAMES))
        wall = time.perf_counter() - started
        timings.append((time.process_time() - cpu, wall, name, len(raw)))
    timings.sort(reverse=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"messages: {seen}, answered: {sum(verdicts.values())}, failed: {len(failures)}")
    print("verdicts:", dict(sorted(verdicts.items())))
    print("limits hit (messages):", dict(sorted(limits.items())))
    print(f"peak RSS: {peak_mb:.0f} MB")
    print(f"load average: {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print("slowest (process CPU; wall beside it):")
    for cpu_seconds, wall, name, size in timings[:5]:
        print(f"  {cpu_seconds:7.2f} s CPU  {wall:7.2f} s wall  {size:>9} B  {name}")
    for failure in failures[:20]:
        print("FAILED", failure)
    return 1 if failures or sum(verdicts.values()) != seen else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adversarial", type=int, default=3000, help="generated messages")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--no-corpus", action="store_true", help="skip the shared corpus")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="shared corpus folder")
    args = parser.parse_args()

    def messages() -> Iterator[tuple[str, bytes]]:
        if not args.no_corpus and args.corpus.is_dir():
            yield from corpus_messages(args.corpus)
        yield from generate(args.adversarial, args.seed)

    return asyncio.run(run(messages()))


if __name__ == "__main__":
    sys.exit(main())

"""The engine's CPU per message in two trees, message by message, side by side.

This machine's speed drifts by ±20 % from one minute to the next, more than most changes
are worth, so two runs of ``benchmarks/engine_cpu.py`` one after the other cannot tell
them apart. Here one process per tree (this checkout, and ``--base DIR``: another
checkout, e.g. a ``git worktree`` of an older commit) loads its own ``milter`` and policy;
the driver sends both the same corpus message in turn (which goes first drawn at random),
and each times its own ``scan()`` with ``time.thread_time``. Both see the same drift, so
the ratio of each pair is the figure: its median, per kind and overall, beside each
tree's own distribution. Each round starts both processes afresh (the same
``PYTHONHASHSEED`` for both, which one starts first alternating), so that a process's
lasting luck or bad luck in its layout averages out over the rounds. A message whose
disposition differs between the trees is listed: a speed change must not move a verdict.

The corpus, keys and the loopback DNS server (``tests/support/dnsserver.py``) are this
checkout's; each process has its own resolver and cache, warmed by one pass.

Usage: .venv/bin/python benchmarks/engine_ab.py --base DIR [--messages 300] [--rounds 3]
(DIR's own ``.venv/bin/python`` runs its process when it has one.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Engine:
    """One tree's scanning process, driven over its standard input and output."""

    def __init__(self, root: Path, corpus: Path, dns: str, hash_seed: int) -> None:
        from benchmarks.harness.paired import tree_command

        child = ["--child", str(root), "--corpus", str(corpus), "--dns", dns]
        self.process = subprocess.Popen(
            [*tree_command(root, Path(__file__)), *child],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        )
        try:
            self.label = self._line()  # where its milter package was imported from
        except BaseException:
            self.close()
            raise

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the scanning process ended (its error is above)")
        return line.strip()

    def scan(self, index: int) -> tuple[float, str]:
        """CPU milliseconds of one scan of message ``index``, and its disposition."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{index}\n")
        ms, disposition = self._line().split()
        return float(ms), disposition

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _child(root: str, corpus: str, dns: str) -> None:
    """Scan the messages the driver names, one a line; answer "ms disposition"."""
    sys.path.insert(0, root)
    import milter
    from milter.dns.stub import DnsResolver
    from milter.engine import scan
    from milter.model.envelope import Envelope
    from milter.policy.loader import load_policy

    if Path(milter.__file__).resolve().parents[1] != Path(root).resolve():
        sys.exit(f"engine_ab: {root} has no milter package (imported {milter.__file__})")
    with open(corpus, "rb") as file:
        messages = pickle.load(file)
    policy = load_policy(None)
    resolver = DnsResolver([dns])
    envelopes = [
        Envelope(client_ip=ip, helo=helo, mail_from=sender, rcpts=(rcpt,))
        for _raw, ip, helo, sender, rcpt in messages
    ]

    async def serve(out: IO[str]) -> None:
        for (raw, *_), envelope in zip(messages, envelopes, strict=True):
            await scan(raw, envelope, policy, resolver)  # warm-up: caches, compiled policy
        print(Path(milter.__file__).parent, file=out, flush=True)
        for line in sys.stdin:
            index = int(line)
            start = time.thread_time()
            result = await scan(messages[index][0], envelopes[index], policy, resolver)
            ms = (time.thread_time() - start) * 1000
            print(f"{ms:.4f} {result.verdict.disposition.value}", file=out, flush=True)

    asyncio.run(serve(sys.stdout))


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {statistics.median(ordered):6.2f}  mean {statistics.mean(ordered):6.2f}  "
        f"p90 {_quantile(ordered, 0.9):6.2f}  p99 {_quantile(ordered, 0.99):6.2f}"
    )


def _run(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from benchmarks.harness.paired import TREES, paired_corpus, start_order

    times: dict[str, list[tuple[float, int]]] = {"new": [], "base": []}
    ratios: dict[str, list[float]] = defaultdict(list)
    moved: set[tuple[int, str, str]] = set()
    draw = random.Random(args.seed)
    with paired_corpus(args.messages, args.keys) as corpus:
        messages = corpus.messages
        roots = {"new": ROOT, "base": Path(args.base).resolve()}
        for round_number in range(args.rounds):
            # Fresh processes each round, both with this round's hash seed, started in turn:
            # a process's own layout (string hashes, addresses) slows it by a few per cent
            # for its whole life, which one pair of processes would read as a difference
            # between the trees.
            engines: dict[str, _Engine] = {}
            try:  # (each process started is closed, even when the other fails to start)
                for name in start_order(round_number):
                    engines[name] = _Engine(roots[name], corpus.path, corpus.dns, round_number)
                if round_number == 0:
                    for name in TREES:
                        print(f"{name}: milter from {engines[name].label}")
                for index in range(len(messages)):
                    order = list(TREES)
                    draw.shuffle(order)
                    got = {name: engines[name].scan(index) for name in order}
                    for name, (ms, _) in got.items():
                        times[name].append((ms, index))
                    kind = messages[index].kind
                    ratios[kind].append(got["new"][0] / max(got["base"][0], 1e-6))
                    if got["new"][1] != got["base"][1]:
                        moved.add((index, got["base"][1], got["new"][1]))
            finally:
                for engine in engines.values():
                    engine.close()
    count = len(messages) * args.rounds
    print(f"{count} scans per tree ({len(messages)} messages x {args.rounds} rounds), CPU ms:")
    for name in ("base", "new"):
        print(f"  {name:4}  {_summary([ms for ms, _ in times[name]])}")
    every = [r for values in ratios.values() for r in values]
    print(f"new/base, median of the per-message ratios: all {statistics.median(every):.3f}")
    for kind in sorted(ratios):
        base = statistics.median(ms for ms, i in times["base"] if messages[i].kind == kind)
        new = statistics.median(ms for ms, i in times["new"] if messages[i].kind == kind)
        print(
            f"  {kind:11} n={len(ratios[kind]):4}  base {base:6.2f}  new {new:6.2f}  "
            f"ratio {statistics.median(ratios[kind]):.3f}"
        )
    for index, before, after in sorted(moved):
        print(f"  disposition moved: message {index} ({messages[index].kind}) {before} -> {after}")
    return 1 if moved else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="another checkout to compare with")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1, help="of the order within each pair")
    parser.add_argument("--keys", default="/tmp/speedbench/keys")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--dns", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.corpus, args.dns)
        return 0
    sys.path.insert(0, str(ROOT))
    from benchmarks.harness.paired import is_checkout

    if not is_checkout(args.base):
        parser.error("--base DIR: a checkout of Tocsin (with its milter package) is required")
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())

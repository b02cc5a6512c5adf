"""CPU of the authentication check (SPF, DKIM, ARC, DMARC) per message in two trees.

``benchmarks/engine_ab.py`` compares whole scans; the auth check is a sixth of one, so its
changes are hard to see there on a shared machine. Here each tree's process (this
checkout, and ``--base DIR``) runs only ``AuthCheck.run`` over the load benchmark's corpus
(``benchmarks/harness/corpus.py``), its records served by the loopback DNS server and its
resolver's cache warmed by one pass, as in a running filter. Each message is run
``--rounds`` times and its best CPU time (``time.thread_time``) kept; dkimpy's per-field
memos are emptied before each run (each run is then a new message for them; key caches
stay warm). ``--runs`` processes per tree alternate, the one started first alternating;
each message's best over its tree's runs is kept, and the figure per kind is the median
of the per-message ratios new/base.

Usage: .venv/bin/python benchmarks/auth_ab.py --base DIR [--messages 300] [--runs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(root: str, corpus: str, dns: str, rounds: int) -> None:
    """Time AuthCheck.run on every message; print the tree's milter path, then a JSON list
    of each message's best CPU ms."""
    sys.path.insert(0, root)
    import milter

    if Path(milter.__file__).resolve().parents[1] != Path(root).resolve():
        sys.exit(f"auth_ab: {root} has no milter package (imported {milter.__file__})")
    from milter.checks.auth import AuthCheck
    from milter.checks.base import CheckContext
    from milter.checks.claim import find_claim
    from milter.dns.stub import DnsResolver
    from milter.mime.parse import parse_message
    from milter.model.envelope import Envelope
    from milter.policy.loader import load_policy

    memos = []
    for module, name in (("dkimpy_tags", "_MEMO"), ("dkimpy_feed", "_HEADER_MEMO")):
        found = getattr(__import__(f"milter.auth.{module}", fromlist=[name]), name, None)
        if found is not None:
            memos.append(found)
    with open(corpus, "rb") as file:
        messages = pickle.load(file)
    policy = load_policy(None)
    resolver = DnsResolver([dns])
    check = AuthCheck()
    contexts = []
    for raw, ip, helo, sender, rcpt in messages:
        mime = parse_message(raw)
        envelope = Envelope(client_ip=ip, helo=helo, mail_from=sender, rcpts=(rcpt,))
        contexts.append(CheckContext(envelope, mime, policy, find_claim(mime, policy), resolver))

    async def run() -> list[float]:
        for ctx in contexts:
            await check.run(ctx)  # warm-up: DNS cache, key caches, lazily compiled policy
        best = [float("inf")] * len(contexts)
        for _ in range(rounds):
            for index, ctx in enumerate(contexts):
                for memo in memos:
                    memo.clear()
                start = time.thread_time()
                await check.run(ctx)
                best[index] = min(best[index], (time.thread_time() - start) * 1000)
        return best

    best = asyncio.run(run())
    print(Path(milter.__file__).parent)
    print(json.dumps(best))


def _one_run(root: Path, corpus: Path, dns: str, rounds: int) -> tuple[str, list[float]]:
    from benchmarks.harness.paired import tree_command

    command = tree_command(root, Path(__file__))
    command += ["--child", str(root), "--corpus", str(corpus), "--dns", dns]
    out = subprocess.run(
        [*command, "--rounds", str(rounds)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    ).stdout.splitlines()
    return out[0], json.loads(out[1])


def _run(args: argparse.Namespace) -> None:
    from benchmarks.harness.paired import paired_corpus, start_order

    trees = {"new": ROOT, "base": Path(args.base)}
    best: dict[str, list[float]] = {}
    labels: dict[str, str] = {}
    with paired_corpus(args.messages, args.keys) as corpus:
        for run in range(args.runs):
            for name in start_order(run):
                label, ms = _one_run(trees[name], corpus.path, corpus.dns, args.rounds)
                labels[name] = label
                best[name] = [min(a, b) for a, b in zip(best.get(name, ms), ms, strict=True)]
    messages = corpus.messages
    print(f"new: milter from {labels['new']}\nbase: milter from {labels['base']}")
    print(f"AuthCheck.run CPU ms, best of {args.rounds} rounds x {args.runs} runs per message")
    by_kind: dict[str, list[int]] = defaultdict(list)
    for index, message in enumerate(messages):
        by_kind[message.kind].append(index)
    for kind, indexes in [("all", list(range(len(messages)))), *sorted(by_kind.items())]:
        base = [best["base"][i] for i in indexes]
        new = [best["new"][i] for i in indexes]
        ratio = statistics.median(n / b for n, b in zip(new, base, strict=True))
        print(
            f"  {kind:11} n={len(indexes):4}  base mean {statistics.mean(base):6.3f}  "
            f"new mean {statistics.mean(new):6.3f}  ratio {ratio:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="the other checkout")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=4, help="processes per tree")
    parser.add_argument("--rounds", type=int, default=8, help="runs of each message per process")
    parser.add_argument("--keys", default="/tmp/speedbench/keys")
    parser.add_argument("--child")
    parser.add_argument("--corpus")
    parser.add_argument("--dns")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.corpus, args.dns, args.rounds)
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.harness.paired import is_checkout

    if not is_checkout(args.base):
        parser.error("--base DIR: a checkout of Tocsin (with its milter package) is required")
    _run(args)


if __name__ == "__main__":
    main()

"""Where the engine's CPU goes per message kind: parse, claim, each check, decide, plan.

In-process, over the load benchmark's corpus (``benchmarks/harness/corpus.py``) with its
records served by the loopback DNS server, so authentication really queries DNS. Each
stage is timed with ``time.thread_time`` in pipeline order (the DNS server answers from
another thread, whose CPU is not the engine's); checks run one after the
other here (the engine runs them concurrently, which costs the same CPU). Values shared
between stages per message (e.g. a body's phrase key) are paid by the first stage that
asks. ``--uncached`` gives every message its own envelope domain and DKIM selector and
clears the resolver's cache before each message, so every lookup goes to the server.

Usage: .venv/bin/python benchmarks/engine_breakdown.py [--messages 300] [--uncached]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.corpus import generate, make_keys  # noqa: E402
from benchmarks.harness.inprocess import corpus_dns, envelope_of, kind_table, warm_up  # noqa: E402
from milter.checks.base import CheckContext  # noqa: E402
from milter.checks.claim import find_claim  # noqa: E402
from milter.checks.registry import default_checks  # noqa: E402
from milter.dns.stub import DnsResolver  # noqa: E402
from milter.engine.decide import decide  # noqa: E402
from milter.engine.plan import plan  # noqa: E402
from milter.mime.parse import MimeLimits, parse_message  # noqa: E402
from milter.model.auth import AuthResult  # noqa: E402
from milter.model.findings import Finding  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402


def _ms(start: float) -> float:
    return (time.thread_time() - start) * 1000


async def _run(args: argparse.Namespace) -> None:
    keys = make_keys(Path(args.keys))
    messages = generate(args.messages, keys=keys, unique="u" if args.uncached else None)
    policy = load_policy(None)
    limits = policy.document.limits
    mime_limits = MimeLimits(
        max_parts=limits.max_parts, max_depth=limits.max_depth, max_headers=limits.max_headers
    )
    checks = default_checks()
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with corpus_dns(keys, messages) as dns:
        resolver = DnsResolver([dns.address])
        envelopes = [envelope_of(m) for m in messages]
        if not args.uncached:
            await warm_up(messages, envelopes, policy, resolver)
        for message, envelope in zip(messages, envelopes, strict=True):
            if args.uncached:
                resolver = DnsResolver([dns.address])
            row = table[message.kind]
            total = time.thread_time()
            start = time.thread_time()
            mime = parse_message(message.raw, mime_limits)
            row["parse"].append(_ms(start))
            start = time.thread_time()
            claim = find_claim(mime, policy)
            row["claim"].append(_ms(start))
            ctx = CheckContext(envelope, mime, policy, claim, resolver)
            findings: list[Finding] = []
            auth: list[AuthResult] = []
            for check in checks:
                start = time.thread_time()
                for item in await check.run(ctx):
                    (auth if isinstance(item, AuthResult) else findings).append(item)  # type: ignore[arg-type]
                row[check.name].append(_ms(start))
            start = time.thread_time()
            from_domain = mime.from_address.domain if mime.from_address else None
            verdict = decide(
                tuple(findings),
                policy,
                envelope=envelope,
                from_domain=from_domain,
                brand=claim.brand if claim else None,
                auth=tuple(auth),
            )
            row["decide"].append(_ms(start))
            start = time.thread_time()
            plan(verdict, mime, policy, envelope)
            row["plan"].append(_ms(start))
            row["total"].append(_ms(total))
    stages = ["parse", "claim", *(c.name for c in checks), "decide", "plan", "total"]
    print(f"median CPU ms per stage ({'uncached' if args.uncached else 'cached'} DNS)")
    print("\n".join(kind_table(table, stages)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--uncached", action="store_true")
    parser.add_argument("--keys", default="/tmp/speedbench/keys")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()

"""How much of the engine's CPU the text layer takes, per message kind: the bound on what a
native (compiled) text layer could save.

The text layer is what is interpreter work per HTML tag, per link and per word: the HTML
view's reading (``milter.text.html_view._read``: visible text and link events), the link
extraction of the body (``extract_links`` as the scan's shared ``BodyLinks`` calls it: the
link events, text URLs, URL parsing, redirect reading) and the phrase-key fold
(``milter.text.confusables._folded``). Each is timed with ``time.thread_time`` around its
outermost call (time inside one of them is not counted again for another), everything
else of ``scan()`` is "rest": what would be left if the text layer cost nothing.

In process, over the load benchmark's corpus with its records served by the loopback DNS
server (cached after a warm-up pass), like ``benchmarks/engine_cpu.py``. The timers wrap
module functions for this process only; the engine is otherwise the one that runs.

Usage: .venv/bin/python benchmarks/text_layer.py [--messages 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.corpus import generate, make_keys  # noqa: E402
from benchmarks.harness.inprocess import corpus_dns, envelope_of, kind_table, warm_up  # noqa: E402
from milter.checks import body_links  # noqa: E402
from milter.dns.stub import DnsResolver  # noqa: E402
from milter.engine import scan  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402
from milter.text import confusables, html_view  # noqa: E402

LAYER = ("view", "links", "fold")
COLUMNS = ("total", *LAYER, "rest")


class _Clock:
    """CPU seconds spent in each wrapped function during one scan, outermost call only."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._inside = False

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._inside:
                return function(*args, **kwargs)
            self._inside = True
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent[part] += time.thread_time() - start
                self._inside = False

        return timed


async def _run(args: argparse.Namespace) -> None:
    clock = _Clock()
    html_view._read = clock.wrap("view", html_view._read)  # type: ignore[assignment]
    body_links.extract_links = clock.wrap("links", body_links.extract_links)
    confusables._folded = clock.wrap("fold", confusables._folded)  # type: ignore[assignment]
    keys = make_keys(Path(args.keys))
    messages = generate(args.messages, keys=keys)
    policy = load_policy(None)
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with corpus_dns(keys, messages) as dns:
        resolver = DnsResolver([dns.address])
        envelopes = [envelope_of(m) for m in messages]
        await warm_up(messages, envelopes, policy, resolver)
        for _ in range(args.rounds):
            for message, envelope in zip(messages, envelopes, strict=True):
                clock.spent.clear()
                start = time.thread_time()
                await scan(message.raw, envelope, policy, resolver)
                total = time.thread_time() - start
                row = rows[message.kind]
                row["total"].append(total * 1000)
                for part in LAYER:
                    row[part].append(clock.spent[part] * 1000)
                row["rest"].append((total - sum(clock.spent[p] for p in LAYER)) * 1000)
    _report(rows, args.rounds)


def _report(rows: dict[str, dict[str, list[float]]], rounds: int) -> None:
    print("CPU ms per scan, median per kind (rest: the scan without the text layer)")
    print("\n".join(kind_table(rows, COLUMNS, rounds)))
    everything = {c: [v for row in rows.values() for v in row[c]] for c in COLUMNS}
    total = sum(everything["total"])
    layer = sum(sum(everything[p]) for p in LAYER)
    print(f"text layer share of all CPU: {100 * layer / total:.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", default="/tmp/speedbench/keys")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()

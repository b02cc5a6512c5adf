"""Micro-benchmark of the HTML and link work of one message, process CPU per HTML part.

Usage: ``python benchmarks/html_links.py [--messages N] [--real DIR]``

Times, over the HTML parts of the generated corpus's newsletters (``benchmarks/harness/
corpus.py``) and optionally over the HTML parts of real mail found under ``--real``:
``tokenize`` (all tokens), ``visible_text``, ``extract_links``, and the engine's
sequence (visible text, then links, on the same string). Caches that live across
messages are warmed on another seed's corpus first, so a figure never comes from
having seen the very same URL before.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness.corpus import generate
from milter.links.extract import extract_links
from milter.text.html import tokenize
from milter.text.html_view import visible_text


def _htmls(raws: Iterable[bytes]) -> list[str]:
    out = []
    for raw in raws:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for part in msg.walk():
            if part.get_content_type() == "text/html":
                try:
                    out.append(str(part.get_content()))
                except (LookupError, ValueError):
                    continue
    return out


def _per_part(parts: list[str], work: Callable[[str], object], rounds: int) -> float:
    best = []
    for _ in range(rounds):
        start = time.process_time()
        for doc in parts:
            work(doc)
        best.append((time.process_time() - start) * 1000 / max(len(parts), 1))
    return statistics.median(best)


def _fresh(doc: str) -> str:
    """An equal string that is another object (no cache keyed on the object)."""
    return (doc + " ")[:-1]


def _engine_sequence(doc: str) -> None:
    visible_text(doc)
    extract_links((), (doc,))


def _report(label: str, parts: list[str], rounds: int) -> None:
    size = statistics.mean(len(p) for p in parts) if parts else 0
    print(f"{label}: {len(parts)} HTML parts, mean {size / 1024:.1f} KiB")
    rows = (
        ("tokenize", lambda d: sum(1 for _ in tokenize(_fresh(d)))),
        ("visible_text", lambda d: visible_text(_fresh(d))),
        ("extract_links", lambda d: extract_links((), (_fresh(d),))),
        ("visible_text+links", lambda d: _engine_sequence(_fresh(d))),
    )
    for name, work in rows:
        print(f"  {name:20} {_per_part(parts, work, rounds):8.3f} ms CPU per part")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real", type=Path, action="append", default=[])
    args = parser.parse_args()
    warm = _htmls(m.raw for m in generate(60, seed=7) if m.kind == "newsletter")
    for doc in warm:
        _engine_sequence(doc)
    corpus = [m for m in generate(args.messages) if m.kind == "newsletter"]
    _report("corpus newsletters", _htmls(m.raw for m in corpus), args.rounds)
    for directory in args.real:
        files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix != ".tsv")
        _report(f"real mail {directory}", _htmls(p.read_bytes() for p in files), args.rounds)


if __name__ == "__main__":
    main()

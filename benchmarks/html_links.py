"""Micro-benchmark of the HTML and link work of one message, process CPU per HTML part.

Usage: ``python benchmarks/html_links.py [--messages N] [--real DIR]``
       ``python benchmarks/html_links.py --plan [--messages N] [--rounds R]``
       ``python benchmarks/html_links.py --parse [--messages N] [--rounds R]``
       ``python benchmarks/html_links.py --view-base DIR [--messages N] [--rounds R]``
       ``python benchmarks/html_links.py --plan-base DIR [--messages N] [--rounds R]``
       ``python benchmarks/html_links.py --refs-ab [--messages N] [--rounds R]``

Times, over the HTML parts of the generated corpus's newsletters (``benchmarks/harness/
corpus.py``) and optionally over the HTML parts of real mail found under ``--real``:
``tokenize`` (all tokens), ``visible_text``, ``extract_links``, and the engine's
sequence (visible text, then links, on the same string). Caches that live across
messages are warmed on another seed's corpus first, so a figure never comes from
having seen the very same URL before.

``--plan`` times ``plan()`` (the link rewriter and banner) instead, on the corpus's
tagged newsletters (newsletter and ARC list mail whose verdict rewrites links): verdicts
come from a real scan (records served by the loopback DNS server), then each plan runs
with the HTML token cache emptied first (the cold case the scan leaves: the scan reads
HTML through :mod:`milter.text.html_view`, not through tokens). ``TOCSIN_TREE=DIR``
imports ``milter`` from another checkout, so that two trees can be run alternately.

``--parse`` times the MIME parse (``parse_message``: it reads each HTML part's visible
text and link events through :mod:`milter.text.html_view`) of every corpus message, the
view cache emptied first: median per message, all kinds and newsletters alone.

``--view-base DIR`` reads each newsletter HTML part (and comment floods) with this
tree's HTML view and with ``DIR/milter/text/html_view.py`` loaded beside it, one after
the other part by part (the order alternating), so that the machine's load weighs on
both alike: the median CPU per part of each.

``--plan-base DIR`` runs ``plan()`` on the same tagged messages with this tree's rewriter
and with DIR's (its ``milter/actions``, ``milter/engine/plan.py`` and ``banner_text.py``
loaded beside this tree's as a package of their own; every other module is this tree's),
alternately message by message, the order alternating: both plans must be equal, and the
median CPU per tagged message of each is printed. A base tree from git:
``git archive REV | tar -x -C /tmp/base``.

``--refs-ab`` reads the same parts with the view, the attribute values' references found
by the tokenizer's narrow pattern or by the broad one it replaced (every ``&name``),
alternately part by part.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, os.environ.get("TOCSIN_TREE", str(Path(__file__).resolve().parent.parent)))

from benchmarks.harness.corpus import generate, make_keys, zone
from milter.links.extract import extract_links
from milter.text import html as html_tokens
from milter.text.html import tokenize
from milter.text.html_view import visible_text

if os.environ.get("TOCSIN_TREE"):
    print(f"milter from {Path(html_tokens.__file__).parents[2]}")


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


async def _tagged(count: int, keys_dir: Path) -> list[tuple[Any, ...]]:
    """(verdict, mime, policy, envelope) of each tagged newsletter of the corpus."""
    from milter.dns.stub import DnsResolver
    from milter.engine import scan
    from milter.engine.plan import LINK_ACTIONS
    from milter.model.envelope import Envelope
    from milter.policy.loader import load_policy
    from tests.support.dnsserver import DnsTestServer

    keys = make_keys(keys_dir)
    messages = generate(count, keys=keys)
    policy = load_policy(None)
    out: list[tuple[Any, ...]] = []
    with DnsTestServer(zone(keys, messages), ttl=3600, soa_ttl=3600, soa_minimum=3600) as dns:
        resolver = DnsResolver([dns.address])
        for m in messages:
            if m.kind not in ("newsletter", "arc"):
                continue
            envelope = Envelope(
                client_ip=m.client_ip, helo=m.helo, mail_from=m.mail_from, rcpts=(m.rcpt,)
            )
            result = await scan(m.raw, envelope, policy, resolver)
            if LINK_ACTIONS & result.verdict.actions:
                out.append((result.verdict, result.mime, policy, envelope))
    return out


def _plan_report(count: int, rounds: int, keys_dir: Path) -> None:
    from milter.engine.plan import plan

    tagged = asyncio.run(_tagged(count, keys_dir))
    per_round = []
    for _ in range(rounds):
        times = []
        for verdict, mime, policy, envelope in tagged:
            html_tokens._cache.clear()  # cold, as after a scan
            start = time.process_time()
            plan(verdict, mime, policy, envelope)
            times.append((time.process_time() - start) * 1000)
        per_round.append((statistics.median(times), statistics.mean(times), max(times)))
    median, mean, worst = (statistics.median(r[i] for r in per_round) for i in range(3))
    print(
        f"plan() on {len(tagged)} tagged newsletters of {count} messages, median of {rounds}"
        f" rounds: median {median:.3f} ms, mean {mean:.3f} ms, max {worst:.3f} ms CPU"
    )
    _rewriter_report(tagged, rounds)


def _rewriter_report(tagged: list[tuple[Any, ...]], rounds: int) -> None:
    """The link rewriter alone on the same messages' HTML parts, reading every tag's
    attributes (as before), only the link attributes, and (as plan() does) those
    without yielding the other tags, run in turn part by part in this process (the
    machine's load weighs on all alike)."""
    from milter.actions import defang
    from milter.actions.targets import targets_from_findings
    from milter.engine.banner_text import failed_to_prove
    from milter.engine.plan import link_rewrite

    only = getattr(defang, "LINK_ATTRIBUTES", None)
    if only is None:
        return  # a tree from before the selection
    work = []
    for verdict, mime, policy, envelope in tagged:
        actions = policy.effective(envelope.rcpts).actions
        targets = targets_from_findings(verdict.findings)
        if actions.unproven_brand_links == "all" and failed_to_prove(verdict):
            targets = targets.with_every_link()
        rewrite = link_rewrite(targets, actions, verdict, envelope.rcpts)
        work += [(doc, rewrite) for doc in _htmls([mime.raw]) if rewrite is not None]
    with_bare = html_tokens.Selection(only.keys, only.names - only.keys)  # tags all yielded
    choices: dict[str, Any] = {"every tag's attributes": None, "link attributes": with_bare}
    if not getattr(only, "bare_tags", True):
        choices["link attributes, bare tags left out"] = html_tokens.Selection(
            only.keys, only.names - only.keys, bare_tags=False
        )
    if hasattr(defang, "_quick_tokens"):  # plan()'s reading: quiet runs skipped
        choices["quick reading"] = only
    spent: dict[str, list[float]] = {name: [] for name in choices}
    for round_ in range(rounds):
        for index, (doc, rewrite) in enumerate(work):
            names = list(choices)
            shift = (index + round_) % len(names)
            for name in names[shift:] + names[:shift]:
                html_tokens._cache.clear()
                start = time.process_time()
                defang._rewrite_html(doc, rewrite, choices[name])
                spent[name].append((time.process_time() - start) * 1000)
    cells = ", ".join(f"{name} {statistics.median(times):.3f}" for name, times in spent.items())
    print(
        f"link rewriter on their {len(work)} HTML parts x{rounds}, interleaved, median ms CPU:"
        f" {cells}"
    )


def _base_plan(base: Path) -> Callable[..., Any]:
    """``plan`` of ``base``'s rewriter, loaded beside this tree's: its files copied into a
    temporary package ``base_rewriter``, their imports of one another renamed."""
    import atexit
    import importlib
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="tocsin-base-rewriter-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    package = Path(folder) / "base_rewriter"
    (package / "actions").mkdir(parents=True)

    def renamed(path: Path) -> str:
        text = path.read_text(encoding="utf-8").replace("milter.actions.", "base_rewriter.actions.")
        return text.replace("milter.engine.banner_text", "base_rewriter.banner_text")

    (package / "__init__.py").write_text("")
    for path in (base / "milter/actions").glob("*.py"):
        (package / "actions" / path.name).write_text(renamed(path), encoding="utf-8")
    for name in ("plan.py", "banner_text.py"):
        (package / name).write_text(renamed(base / "milter/engine" / name), encoding="utf-8")
    sys.path.insert(0, str(package.parent))
    module = importlib.import_module("base_rewriter.plan")
    plan: Callable[..., Any] = module.plan
    return plan


def _plan_against(base: Path, count: int, rounds: int, keys_dir: Path) -> None:
    from milter.engine.plan import plan

    old = _base_plan(base)
    tagged = asyncio.run(_tagged(count, keys_dir))
    for verdict, mime, policy, envelope in tagged:
        assert old(verdict, mime, policy, envelope) == plan(verdict, mime, policy, envelope)
    spent: dict[str, list[float]] = {"base": [], "this": []}
    for round_ in range(rounds):
        for index, work in enumerate(tagged):
            pair = (("base", old), ("this", plan))
            for name, function in pair if (index + round_) % 2 else pair[::-1]:
                start = time.process_time()
                function(*work)
                spent[name].append((time.process_time() - start) * 1000)
    before, after = statistics.median(spent["base"]), statistics.median(spent["this"])
    print(
        f"plan() on {len(tagged)} tagged messages of {count} x{rounds}, interleaved, plans"
        f" equal: median {before:.3f} -> {after:.3f} ms CPU per message"
        f" ({(after / before - 1) * 100:+.0f} %)"
    )


def _parse_report(count: int, rounds: int) -> None:
    from milter.mime.parse import parse_message
    from milter.text import html_view

    messages = generate(count)
    spent: dict[str, list[float]] = {}
    for _ in range(rounds):
        for message in messages:
            html_view._cache.clear()
            start = time.process_time()
            parse_message(message.raw)
            spent.setdefault(message.kind, []).append((time.process_time() - start) * 1000)
    every = [t for times in spent.values() for t in times]
    print(
        f"parse_message over {count} messages x{rounds}: median {statistics.median(every):.3f} ms,"
        f" newsletters {statistics.median(spent['newsletter']):.3f} ms,"
        f" arc {statistics.median(spent.get('arc', [0.0])):.3f} ms CPU"
    )


def _view_against(base: Path, count: int, rounds: int) -> None:
    import importlib.util

    from milter.text import html_view

    spec = importlib.util.spec_from_file_location("base_view", base / "milter/text/html_view.py")
    assert spec is not None
    assert spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    parts = _htmls(m.raw for m in generate(count) if m.kind == "newsletter")
    floods = {unit: "<p>a</p>" + unit * 50_000 for unit in ("<![x]>", "</1>", "<!-- c -->")}
    for label, docs in (
        ("newsletter parts", parts),
        *((f"{u} x50,000", [d]) for u, d in floods.items()),
    ):
        spent: dict[str, list[float]] = {"base": [], "this": []}
        for round_ in range(rounds):
            for index, doc in enumerate(docs):
                pair = (("base", old), ("this", html_view))
                for name, module in pair if (index + round_) % 2 else pair[::-1]:
                    start = time.process_time()
                    module._read(doc, keep_events=len(doc) <= 256 * 1024)
                    spent[name].append((time.process_time() - start) * 1000)
        before, after = statistics.median(spent["base"]), statistics.median(spent["this"])
        print(
            f"view of {label} ({len(docs)} x{rounds}, interleaved): median"
            f" {before:.3f} -> {after:.3f} ms CPU ({(after / before - 1) * 100:+.0f} %)"
        )


def _refs_ab(count: int, rounds: int) -> None:
    import re

    from milter.text import html_view

    broad = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
    narrow = html_tokens._ATTR_REF
    parts = _htmls(m.raw for m in generate(count) if m.kind == "newsletter")
    spent: dict[str, list[float]] = {"broad": [], "narrow": []}
    for round_ in range(rounds):
        for index, doc in enumerate(parts):
            pair = (("broad", broad), ("narrow", narrow))
            for name, pattern in pair if (index + round_) % 2 else pair[::-1]:
                html_tokens._ATTR_REF = pattern
                start = time.process_time()
                html_view._read(doc, keep_events=True)
                spent[name].append((time.process_time() - start) * 1000)
    html_tokens._ATTR_REF = narrow
    before, after = statistics.median(spent["broad"]), statistics.median(spent["narrow"])
    print(
        f"view of newsletter parts ({len(parts)} x{rounds}, interleaved), attribute references"
        f" by the broad -> narrow pattern: {before:.3f} -> {after:.3f} ms CPU"
        f" ({(after / before - 1) * 100:+.1f} %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real", type=Path, action="append", default=[])
    parser.add_argument("--plan", action="store_true", help="time plan() on tagged newsletters")
    parser.add_argument("--parse", action="store_true", help="time the MIME parse per message")
    parser.add_argument("--view-base", type=Path, help="a tree whose HTML view to compare")
    parser.add_argument("--plan-base", type=Path, help="a tree whose rewriter to compare")
    parser.add_argument("--refs-ab", action="store_true", help="attribute reference patterns")
    parser.add_argument("--keys", type=Path, default=Path("/tmp/speedbench/keys"))
    args = parser.parse_args()
    if args.plan:
        _plan_report(args.messages, args.rounds, args.keys)
        return
    if args.parse:
        _parse_report(args.messages, args.rounds)
        return
    if args.plan_base:
        _plan_against(args.plan_base, args.messages, args.rounds, args.keys)
        return
    if args.refs_ab:
        _refs_ab(args.messages, args.rounds)
        return
    if args.view_base:
        _view_against(args.view_base, args.messages, args.rounds)
        return
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

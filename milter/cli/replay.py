"""``tocsin replay``: run stored mail through a policy (or two, to compare) and report.

Reads files, folders, mbox files and Maildirs in place (``milter.ops.mailsources``),
scans each message with the engine, offline unless ``--dns``, and prints counts per
verdict and brand, the slowest messages and, with ``--against``, every message whose
verdict differs. A progress bar (rich) runs on stderr while it works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from milter.cli.common import EXIT_INPUT, EXIT_OK, SubParsers, add_dns_options, load_or_fail
from milter.cli.scan import OFFLINE_NOTE
from milter.model.envelope import Envelope
from milter.ops.mailsources import iter_messages
from milter.ops.replay import ReplayRow, ReplaySummary

if TYPE_CHECKING:
    from rich.console import Console

    from milter.engine import ScanResult
    from milter.policy.model import Policy

VERDICT_ORDER = ("accept", "tag", "quarantine", "reject", "tempfail")


def add_replay_parser(sub: SubParsers) -> None:
    """Register the ``replay`` sub-command."""
    parser = sub.add_parser(
        "replay",
        help="run stored mail through a policy (or two) and report",
        description="Scan files, folders, mbox files and Maildirs with policy A and report "
        "counts per verdict and brand and the slowest messages; with --against B, list the "
        "messages whose verdict differs. Offline unless --dns.",
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="message file, folder, mbox or Maildir"
    )
    parser.add_argument(
        "--policy", type=Path, metavar="DIR", help="policy A (default: the shipped defaults)"
    )
    parser.add_argument(
        "--against", type=Path, metavar="DIR", help="policy B, to compare verdicts with A"
    )
    add_dns_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON report on stdout")
    parser.add_argument(
        "--slowest", type=int, default=10, metavar="N", help="how many slowest messages to list"
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    parser.set_defaults(run=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    """Replay, print the report; exit 3 when an input could not be read."""
    policy = load_or_fail(args.policy)
    against = load_or_fail(args.against) if args.against is not None else None
    resolver = None
    if args.dns:
        from milter.cli.dns import make_resolver

        resolver = make_resolver(args.nameserver)
    else:
        print(OFFLINE_NOTE, file=sys.stderr)
    summary = asyncio.run(_replay(args, policy, against, resolver))
    if args.json:
        report = summary.as_dict()
        report["policy"] = list(policy.files)
        report["against"] = list(against.files) if against is not None else None
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_report(summary, compared=against is not None)
    for label, error in summary.unreadable:
        print(f"tocsin: {label}: {error}", file=sys.stderr)
    return EXIT_INPUT if summary.unreadable else EXIT_OK


async def _replay(
    args: argparse.Namespace, policy: Policy, against: Policy | None, resolver: object | None
) -> ReplaySummary:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from milter.engine import scan

    summary = ReplaySummary(keep=max(args.slowest, 0))
    progress = Progress(
        TextColumn("tocsin replay"),
        BarColumn(),
        TextColumn("{task.completed} messages"),
        TimeElapsedColumn(),
        console=_console(stderr=True, force=args.progress),
        disable=args.progress == "never",
        refresh_per_second=10 if sys.stderr.isatty() else 1,
    )
    with progress:
        task = progress.add_task("replay", total=None)
        for item in iter_messages(args.paths):
            if item.error is not None:
                summary.add_unreadable(item.label, item.error)
                continue
            first = await scan(item.raw, Envelope(), policy, resolver)  # type: ignore[arg-type]
            second = None
            if against is not None:
                second = await scan(item.raw, Envelope(), against, resolver)  # type: ignore[arg-type]
            summary.add(_row(item.label, first, second))
            progress.advance(task)
    return summary


def _row(label: str, first: ScanResult, second: ScanResult | None) -> ReplayRow:
    verdict = first.verdict
    return ReplayRow(
        label=label,
        verdict=str(verdict.disposition),
        brand=verdict.brand,
        score=verdict.score,
        rule=verdict.reasons[0].rule if verdict.reasons else "-",
        elapsed_ms=first.elapsed_ms,
        would=str(verdict.would) if verdict.would is not None else None,
        against_verdict=str(second.verdict.disposition) if second else None,
        against_rule=(
            second.verdict.reasons[0].rule if second and second.verdict.reasons else None
        ),
    )


def _console(*, stderr: bool, force: str = "auto") -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = True if force == "always" else None
    width = None if stream.isatty() else 160  # files and pipes: wide, so lines are not cut
    return Console(file=stream, force_terminal=terminal, width=width, highlight=False)


def _print_report(summary: ReplaySummary, *, compared: bool) -> None:
    from rich.table import Table

    out = _console(stderr=False)
    verdicts = Table(title="Verdicts / verdicts")
    verdicts.add_column("verdict")
    verdicts.add_column("policy A", justify="right")
    if compared:
        verdicts.add_column("policy B", justify="right")
    for name in VERDICT_ORDER:
        cells = [name, str(summary.verdicts[name])]
        cells += [str(summary.against_verdicts[name])] if compared else []
        verdicts.add_row(*cells)
    out.print(verdicts)
    if summary.would:
        would = ", ".join(f"{k} {v}" for k, v in summary.would.most_common())
        out.print(f"monitor mode, would have been: {would}")
    brands = Table(title="Brands × verdicts (policy A)")
    brands.add_column("brand")
    for name in VERDICT_ORDER:
        brands.add_column(name, justify="right")
    for brand, counts in sorted(summary.by_brand.items()):
        brands.add_row(brand, *(str(counts[name]) for name in VERDICT_ORDER))
    out.print(brands)
    slowest = Table(title="Slowest messages (policy A)")
    for column in ("ms", "verdict", "brand", "input"):
        slowest.add_column(column, no_wrap=column == "input")
    for row in summary.slowest:
        slowest.add_row(f"{row.elapsed_ms:.1f}", row.verdict, row.brand or "-", row.label)
    out.print(slowest)
    if compared:
        _print_differences(out, summary)
    mean = summary.total_ms / summary.messages if summary.messages else 0.0
    out.print(
        f"{summary.messages} messages, {len(summary.unreadable)} unreadable, "
        f"{summary.total_ms / 1000:.1f} s scanning (mean {mean:.1f} ms)"
    )


def _print_differences(out: Console, summary: ReplaySummary) -> None:
    from rich.table import Table

    if not summary.differences:
        out.print("No differences between policy A and policy B.")
        return
    table = Table(title=f"Differences A → B ({len(summary.differences)})")
    for column in ("A", "B", "input"):
        table.add_column(column, no_wrap=column == "input")
    for row in summary.differences:
        table.add_row(
            f"{row.verdict} ({row.rule})", f"{row.against_verdict} ({row.against_rule})", row.label
        )
    out.print(table)

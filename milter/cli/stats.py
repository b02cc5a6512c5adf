"""``tocsin stats``: what the daemon did, from its metrics (since it started) and from the
quarantine index (the last hour and day)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from milter.cli.common import SubParsers
from milter.cli.control import DEFAULT_CONFIG

VERDICTS = ("accept", "tag", "quarantine", "reject", "tempfail")
WINDOWS = (("hour", timedelta(hours=1)), ("day", timedelta(days=1)))


def add_stats_parser(sub: SubParsers) -> None:
    """Register ``stats``."""
    parser = sub.add_parser(
        "stats", help="messages by brand and verdict: since start (metrics), last hour/day"
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"settings file (default {DEFAULT_CONFIG})"
    )
    parser.add_argument("--metrics", metavar="HOST:PORT", help="the daemon's metrics endpoint")
    parser.add_argument("--quarantine-dir", type=Path, metavar="DIR", help="quarantine store")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    """Print both views; a source that cannot be read is named, not fatal."""
    metrics_at, directory = _sources(args)
    since_start = from_metrics(metrics_at) if metrics_at else None
    recent = from_quarantine(directory) if directory else None
    if args.json:
        print(json.dumps({"since_start": since_start, "quarantine": recent}, ensure_ascii=False))
        return 0
    _print_metrics(metrics_at, since_start)
    _print_quarantine(directory, recent)
    return 0


def _sources(args: argparse.Namespace) -> tuple[str | None, Path | None]:
    metrics, directory = args.metrics, args.quarantine_dir
    config = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if config is not None:
        from milter.cli.control import settings_or_fail

        settings = settings_or_fail(config)
        metrics = metrics or settings.metrics.listen
        directory = directory or settings.quarantine.directory
    if directory is None and os.environ.get("TOCSIN_QUARANTINE_DIR"):
        directory = Path(os.environ["TOCSIN_QUARANTINE_DIR"])
    return metrics, directory


def from_metrics(address: str) -> dict[str, Any] | None:
    """Totals since the daemon started, read from ``/metrics``; None when unreachable."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except (OSError, ValueError):
        return None
    by_brand: dict[str, Counter[str]] = {}
    would: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "tocsin_messages_total":
                by_brand.setdefault(labels["brand"], Counter())[labels["verdict"]] += int(value)
                if labels["would"] != "none":
                    would[labels["would"]] += int(value)
            elif sample.name == "tocsin_scan_seconds_bucket":
                buckets[float(labels["le"])] = buckets.get(float(labels["le"]), 0) + value
            elif sample.name.endswith("_total") and sample.name.startswith("tocsin_"):
                key = sample.name.removeprefix("tocsin_").removesuffix("_total")
                suffix = labels.get("result")
                totals[f"{key}.{suffix}" if suffix else key] += int(value)
    return {
        "messages": sum(sum(c.values()) for c in by_brand.values()),
        "by_brand": {b: dict(c) for b, c in sorted(by_brand.items())},
        "would": dict(would),
        "totals": dict(sorted(totals.items())),
        "scan_ms": {q: _quantile_ms(buckets, q) for q in ("p50", "p95", "p99")},
    }


def _quantile_ms(buckets: dict[float, float], name: str) -> float | None:
    """The upper bound (ms) of the histogram bucket holding that quantile."""
    if not buckets or not buckets.get(float("inf")):
        return None
    wanted = float(name[1:]) / 100 * buckets[float("inf")]
    return next((le * 1000 for le, count in sorted(buckets.items()) if count >= wanted), None)


def from_quarantine(directory: Path) -> dict[str, Any] | None:
    """Messages stored in the last hour and day, by brand; None when unreadable."""
    from milter.quarantine.backend import MAX_PAGE, ListQuery
    from milter.quarantine.errors import QuarantineError
    from milter.quarantine.store import QuarantineStore

    if not directory.is_dir():
        return None
    now = datetime.now(UTC)
    result: dict[str, Any] = {}
    try:
        store = QuarantineStore(directory)
        for name, span in WINDOWS:
            brands: Counter[str] = Counter()
            before = None
            while True:
                page = store.search(ListQuery(since=now - span, before=before, limit=MAX_PAGE))
                brands.update(item.brand or "-" for item in page.items)
                before = page.next_before
                if before is None:
                    break
            result[name] = {"messages": sum(brands.values()), "by_brand": dict(brands)}
    except (QuarantineError, OSError):
        return None
    return result


def _print_metrics(address: str | None, data: dict[str, Any] | None) -> None:
    if address is None:
        print("metrics: no endpoint (give --metrics or set metrics.listen in the settings)")
        return
    if data is None:
        print(f"metrics: http://{address}/metrics did not answer (is tocsin serve running?)")
        return
    print(f"Since the daemon started (http://{address}/metrics): {data['messages']} messages")
    print(f"  {'brand':<16}" + "".join(f"{v:>12}" for v in VERDICTS))
    for brand, counts in data["by_brand"].items():
        print(f"  {brand:<16}" + "".join(f"{counts.get(v, 0):>12}" for v in VERDICTS))
    if data["would"]:
        print("  monitor mode, would have been: " + _pairs(data["would"]))
    scan = data["scan_ms"]
    if scan["p50"] is not None:
        bounds = ", ".join(f"{q} ≤ {scan[q]:g} ms" for q in ("p50", "p95", "p99"))
        print(f"  scan time: {bounds}")
    print("  " + _pairs(data["totals"]))


def _print_quarantine(directory: Path | None, data: dict[str, Any] | None) -> None:
    if directory is None:
        return
    if data is None:
        print(f"quarantine: {directory} cannot be read (run as the daemon's user)")
        return
    print(f"Quarantine ({directory}):")
    for name, _ in WINDOWS:
        window = data[name]
        brands = _pairs(window["by_brand"]) if window["by_brand"] else "-"
        print(f"  last {name}: {window['messages']} stored ({brands})")


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())

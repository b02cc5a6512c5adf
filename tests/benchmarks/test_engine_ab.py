"""Smoke test of the side-by-side engine comparison: two scanning processes (here both on
this checkout), every message scanned by each once per round, the pairs' ratios per kind
and in all, and no disposition moved between two copies of the same engine (no timing
asserted)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.scripts import ROOT, run_script


def test_engine_ab_pairs_every_scan(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/engine_ab.py",
        *("--base", str(ROOT), "--messages", "14", "--rounds", "2"),
        *("--keys", str(tmp_path / "keys")),
    )
    sources = [line.split(" milter from ")[1] for line in lines if " milter from " in line]
    assert sources == [str(ROOT / "milter")] * 2, lines
    assert "28 scans per tree (14 messages x 2 rounds), CPU ms:" in lines
    for tree in ("base", "new"):
        row = [line for line in lines if line.strip().startswith(tree + " ")]
        assert re.search(r"median +[\d.]+ +mean +[\d.]+ +p90 +[\d.]+ +p99 +[\d.]+$", row[0])
    assert any(
        re.match(r"new/base, median of the per-message ratios: all [\d.]+$", line) for line in lines
    )
    kinds = [re.match(r"\s+(\w+)\s+n=\s*(\d+)\s+base", line) for line in lines]
    assert sum(int(m.group(2)) for m in kinds if m is not None) == 28
    assert not [line for line in lines if "disposition moved" in line]

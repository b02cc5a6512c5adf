"""Smoke test of the side-by-side auth check comparison: two processes per run (here both
on this checkout), every message timed in each, a ratio per kind and in all (no timing
asserted)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.scripts import ROOT, run_script


def test_auth_ab_times_every_message_in_both_trees(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/auth_ab.py",
        *("--base", str(ROOT), "--messages", "14", "--runs", "2", "--rounds", "1"),
        *("--keys", str(tmp_path / "keys")),
    )
    sources = [line.split(" milter from ")[1] for line in lines if " milter from " in line]
    assert sources == [str(ROOT / "milter")] * 2, lines
    row = re.compile(r"\s+(\S+)\s+n=\s*(\d+)\s+base mean\s+[\d.]+\s+new mean")
    rows = [row.match(line) for line in lines]
    counts = {m.group(1): int(m.group(2)) for m in rows if m is not None}
    assert counts.pop("all") == 14, lines
    assert sum(counts.values()) == 14
    assert all(re.search(r"ratio [\d.]+$", line) for line in lines if " n=" in line)

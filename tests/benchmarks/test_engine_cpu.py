"""Smoke test of the engine CPU distribution script: every scan counted once per round,
per kind and in all, and the slowest listed (no timing asserted)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.scripts import run_script


def test_engine_cpu_counts_every_scan(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/engine_cpu.py",
        *("--messages", "14", "--rounds", "2", "--top", "3", "--keys", str(tmp_path / "keys")),
    )
    overall = re.match(r"all n=(\d+) median [\d.]+ mean [\d.]+ p90 [\d.]+ p99 [\d.]+$", lines[0])
    assert overall is not None, lines
    assert int(overall.group(1)) == 28
    kinds = [re.match(r"\s+(\w+)\s+n=\s*(\d+) median", line) for line in lines[1:]]
    counts = [int(m.group(2)) for m in kinds if m is not None]
    assert sum(counts) == 28
    assert len([line for line in lines if "slowest" in line]) == 3

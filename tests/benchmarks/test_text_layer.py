"""Smoke test of the text-layer share benchmark: every kind's row, the text layer found where
HTML is (newsletters) and absent where it is not (plain mail), "rest" what is left of the
total (no timing asserted beyond that ordering)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.scripts import run_script


def test_text_layer_splits_the_scan(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/text_layer.py",
        *("--messages", "14", "--rounds", "1", "--keys", str(tmp_path / "keys")),
    )
    rows = {}
    for line in lines:
        found = re.match(
            r"(\w+(?: \(mean\))?) +(\d+) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+)$", line
        )
        if found:
            total, view, links, fold, rest = map(float, found.groups()[2:])
            rows[found.group(1)] = (int(found.group(2)), total, view, links, fold, rest)
    assert rows["all"][0] == 14
    assert sum(n for kind, (n, *_) in rows.items() if not kind.startswith("all")) == 14
    _, total, view, links, _, rest = rows["newsletter"]
    assert view > 0
    assert links > 0
    assert rest < total
    _, total, view, links, _, rest = rows["plain"]
    assert view == 0
    assert rest <= total
    share = [line for line in lines if line.startswith("text layer share of all CPU: ")]
    assert share
    assert 0 < float(share[0].split(": ")[1].split()[0]) < 100

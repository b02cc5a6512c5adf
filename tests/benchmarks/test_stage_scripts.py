"""Smoke tests of the stage benchmarks added in session 11: the milter front-end replay
(milter_replay.py) and the claim-and-checks stage (claim_stage.py). No timing asserted."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.scripts import run_script


def _digest(lines: list[str]) -> str:
    found = re.search(r"replies sha256 ([0-9a-f]{64})$", lines[-1])
    assert found, lines
    return found.group(1)


def test_milter_replay_is_the_same_whatever_the_reads(tmp_path: Path) -> None:
    """Recorded streams replayed through the front-end: the replies' digest is the same on
    every replay, and whether the stream comes a packet a read or cut into 7-byte reads
    (the front-end's answers do not depend on how TCP cut the stream)."""
    recorded = tmp_path / "replay.pkl"
    lines = run_script(
        "benchmarks/milter_replay.py", "record", "--messages", "6", "--out", str(recorded)
    )
    assert lines[-1].startswith(f"6 messages recorded to {recorded}"), lines
    once = _digest(run_script("benchmarks/milter_replay.py", "replay", str(recorded)))
    assert once == _digest(run_script("benchmarks/milter_replay.py", "replay", str(recorded)))
    cut = run_script("benchmarks/milter_replay.py", "replay", str(recorded), "--read-size", "7")
    assert _digest(cut) == once
    twice = run_script("benchmarks/milter_replay.py", "replay", str(recorded), "--rounds", "2")
    assert twice[-1].startswith("6 messages x 2 rounds"), twice
    assert _digest(twice) != once  # twice the replies, another digest


def test_claim_stage_times_every_message(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/claim_stage.py",
        *("--messages", "10", "--rounds", "1", "--keys", str(tmp_path / "keys")),
    )
    rows = {line.split()[0]: line.split() for line in lines if re.match(r"\w+ +\d+ ", line)}
    assert int(rows["all"][1]) == 10, lines
    assert sum(int(r[1]) for kind, r in rows.items() if kind != "all") == 10
    assert all(float(r[-1]) > 0 for r in rows.values())

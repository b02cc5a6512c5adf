"""The two-tree comparisons (engine_ab.py, auth_ab.py) and what they share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness.paired import is_checkout, start_order, tree_command
from tests.support.scripts import ROOT


@pytest.mark.parametrize("script", ["benchmarks/engine_ab.py", "benchmarks/auth_ab.py"])
def test_a_base_without_the_package_is_refused(script: str, tmp_path: Path) -> None:
    """A --base that is no checkout is an error at once, not a run that quietly imports
    this tree's package twice and compares it with itself."""
    result = subprocess.run(
        [sys.executable, script, "--base", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "a checkout of Tocsin" in result.stderr
    assert "Traceback" not in result.stderr


def test_each_tree_starts_first_in_turn() -> None:
    assert [start_order(n) for n in range(4)] == [
        ("new", "base"),
        ("base", "new"),
        ("new", "base"),
        ("base", "new"),
    ]


def test_a_checkout_is_told_by_its_package(tmp_path: Path) -> None:
    assert is_checkout(str(ROOT))
    assert not is_checkout(str(tmp_path))
    assert not is_checkout(None)


def test_a_tree_runs_under_its_own_interpreter(tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "engine_ab.py"
    assert tree_command(tmp_path, script) == [sys.executable, str(script)]
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    assert tree_command(tmp_path, script) == [str(python), str(script)]

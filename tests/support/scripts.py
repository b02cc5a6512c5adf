"""Run one of the repository's scripts (a benchmark, a tool) as a user would, from the root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_script(path: str, *args: str, timeout: float = 240) -> list[str]:
    """The lines ``python path args…`` printed; fails the test (with its output) unless it
    exited 0."""
    result = subprocess.run(
        [sys.executable, path, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()

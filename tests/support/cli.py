"""Run the ``tocsin`` command as admins do: a real subprocess, real exit code."""

from __future__ import annotations

import subprocess
import sys


def run_tocsin(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m milter ARGS`` with stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "milter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

"""This process's open file descriptors, for tests that check nothing is left open."""

from __future__ import annotations

import os
from pathlib import Path


def open_files_under(directory: Path) -> list[str]:
    """Targets of this process's descriptors that point into ``directory`` (deleted
    files included: their target still names the directory)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory) + "/"):
            found.append(target)
    return found

"""Find processes this test run started and left running (tocsin serve, Postfix, ...).

Every process a test starts inherits ``RUN_MARKER`` in its environment, except Postfix's
master, which clears its environment: it is recognised by its working directory, the
queue directory of an instance this run created (``POSTFIX_ROOTS``).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

RUN_MARKER = "TOCSIN_TEST_RUN"
WATCHED = ("milter serve", "tocsin serve", "smtp-sink", "postgres", "chromium", "master")
POSTFIX_ROOTS: set[Path] = set()


@dataclass(frozen=True, slots=True)
class Leftover:
    pid: int
    command: str


def mark_this_run() -> str:
    """Put a marker unique to this run in the environment children inherit."""
    marker = os.environ.get(RUN_MARKER) or f"{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[RUN_MARKER] = marker
    return marker


def find_leftovers(marker: str) -> list[Leftover]:
    """Watched processes started by this run that are still alive."""
    found: list[Leftover] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not any(word in command for word in WATCHED):
                continue
            environ = (entry / "environ").read_bytes()
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        ours = f"{RUN_MARKER}={marker}".encode() in environ.split(b"\0")
        ours = ours or any(cwd.is_relative_to(root) for root in POSTFIX_ROOTS)
        if ours:
            found.append(Leftover(int(entry.name), command.strip()))
    return found


def wait_for_leftovers(marker: str, grace_seconds: float = 5.0) -> list[Leftover]:
    """Leftovers that are still there after ``grace_seconds`` (exits take a moment)."""
    deadline = time.monotonic() + grace_seconds
    while True:
        found = find_leftovers(marker)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)

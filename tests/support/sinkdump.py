"""Reading smtp-sink dump files once smtp-sink has finished writing them."""

from __future__ import annotations

import time
from pathlib import Path


def settled(path: Path, data: bytes | None = None, interval: float = 0.2) -> bytes:
    """The dump at ``path`` once two reads ``interval`` seconds apart agree.

    smtp-sink writes its dump while the message streams in, so a file that exists may
    still be growing; a read that stopped mid-write looks like a truncated delivery."""
    if data is None:
        data = path.read_bytes()
    while True:
        time.sleep(interval)
        again = path.read_bytes()
        if again == data:
            return data
        data = again

"""The session-end check finds a process a test started and left running, and only those."""

from __future__ import annotations

import os
import subprocess
import time

from tests.support.leftovers import RUN_MARKER, find_leftovers


def test_a_process_with_this_runs_marker_is_found_until_it_stops() -> None:
    marker = os.environ[RUN_MARKER]
    # a stand-in named like a watched program: bash's exec -a sets its argv[0]
    proc = subprocess.Popen(["bash", "-c", "exec -a smtp-sink sleep 60"])
    try:
        # until bash has exec'd, the process is still named bash: wait for the new name
        deadline = time.monotonic() + 10
        while proc.pid not in {p.pid for p in find_leftovers(marker)}:
            assert time.monotonic() < deadline, "the stand-in was never found"
            time.sleep(0.05)
        assert proc.pid not in {p.pid for p in find_leftovers("another-run")}
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.pid not in {p.pid for p in find_leftovers(marker)}

"""#17 "a deadline that really stops work": a scan stuck where no cooperative checkpoint
reaches it blocks its worker's event loop; the supervisor sees the heartbeat stop, kills
the worker (the MTA tempfails what it held) and starts another.

The hang is real: a message of 25 HTML parts of 1 MB of bogus comments (``</1>``) each,
whose links the links check reads token by token on the event loop (several seconds of
CPU: see ``shapes.html_floods``), under a ``worker_stall_seconds`` far below that cost. A real
``tocsin serve --workers 1`` serves it; the test asserts what happened (connection dropped
with no answer, the worker replaced, the next message served, the metric and the log line),
not how long it took.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from milter.codec import Accept
from tests.hostile.shapes import html_floods
from tests.support.milter_client import MilterClient, MilterClosed, one_message
from tests.support.smtp_filter import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
HAM = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hello\r\n\r\nHello.\r\n"


async def _dropped(port: int, raw: bytes) -> str:
    """Send ``raw``; return how the session ended (the worker is expected to vanish)."""
    client = await MilterClient.open(port=port)
    await client.negotiate()
    await client.connect()
    await client.helo("client.test")
    try:
        outcome = await client.message(raw)
    except (MilterClosed, ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
        return f"dropped: {type(exc).__name__}"
    return f"answered: {outcome.final!r}"


async def _served(port: int, raw: bytes) -> object:
    """The final reply for ``raw``, retrying while no worker answers (as an MTA would)."""
    for _ in range(600):
        try:
            return (await one_message(port, raw)).final
        except (MilterClosed, ConnectionError, asyncio.IncompleteReadError, OSError):
            await asyncio.sleep(0.1)
    raise AssertionError("never served")


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_stalled_worker_is_replaced_and_the_next_message_served(tmp_path: Path) -> None:
    milter_port, metrics_port = free_port(), free_port()
    config = tmp_path / "tocsin.yaml"
    config.write_text("worker_stall_seconds: 2\n")
    command = [sys.executable, "-m", "milter", "serve", "--no-dns", "--config", str(config)]
    command += ["--quarantine-dir", str(tmp_path / "q"), "--workers", "1"]
    command += ["--milter", f"inet:127.0.0.1:{milter_port}"]
    command += ["--metrics", f"127.0.0.1:{metrics_port}", "--no-watch"]
    proc = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        wait_port(milter_port)
        wait_port(metrics_port)
        assert asyncio.run(_served(milter_port, HAM)) == Accept()  # warm worker
        stalled = 'tocsin_worker_restarts_total{reason="stalled"}'
        assert _metric(metrics_port, stalled) == 0
        ended = asyncio.run(_dropped(milter_port, html_floods(25)))
        assert ended.startswith("dropped"), ended  # no answer: the MTA's default action
        assert asyncio.run(_served(milter_port, HAM)) == Accept()  # a fresh worker
        assert _metric(metrics_port, stalled) >= 1
        assert proc.poll() is None  # the daemon itself never stopped
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    log = proc.stderr.read() if proc.stderr else ""
    assert re.search(r"worker \d+ stalled: its event loop has not turned", log), log
    assert re.search(r"worker \d+ killed \(stalled\); starting another", log), log
    assert log.count("ready") >= 2  # the first worker and its replacement


def test_stall_watch_sees_only_an_armed_slot_that_stopped_moving() -> None:
    from milter.frontends.watchdog import Heartbeats, StallWatch

    watch = StallWatch(Heartbeats(2), stall_seconds=5)
    watch.reset(0)
    watch.reset(1)
    assert watch.stalled(0, 100.0) is None  # starting (unarmed): never stalled
    assert watch.stalled(0, 1000.0) is None
    watch.heartbeats.write(0, 1)
    assert watch.stalled(0, 1000.0) is None  # first sight of a beat
    assert watch.stalled(0, 1004.0) is None  # within the limit
    assert watch.stalled(0, 1006.0) == 6.0  # no beat for 6 s > 5 s
    watch.heartbeats.write(0, 2)
    assert watch.stalled(0, 1007.0) is None  # it moved again
    assert watch.stalled(1, 2000.0) is None  # the other slot is independent

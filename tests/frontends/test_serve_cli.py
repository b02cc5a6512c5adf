"""``tocsin serve`` as a real process: workers, reload on SIGHUP, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from milter.codec import Accept, Discard
from tests.support.milter_client import MilterClient

ROOT = Path(__file__).resolve().parents[2]
HAM = (ROOT / "docs" / "examples" / "legit-notice.eml").read_bytes()
LURE = (ROOT / "docs" / "examples" / "cpf-lure.eml").read_bytes()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "milter", "serve", "--no-dns"]
    command += ["--quarantine-dir", str(tmp_path / "q"), *args]
    return subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def _wait_listening(proc: subprocess.Popen[str], port: int, workers: int = 1) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("tocsin serve did not start listening")


async def _one(port: int, raw: bytes) -> object:
    client = await MilterClient.open(port=port)
    await client.negotiate()
    await client.connect()
    await client.helo("client.test")
    outcome = await client.message(raw)
    await client.quit()
    return outcome.final


def test_serve_with_two_workers_reload_and_graceful_stop(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    port = _free_port()
    proc = _start(
        tmp_path, "--milter", f"inet:127.0.0.1:{port}", "--workers", "2", "--policy", str(policies)
    )
    try:
        _wait_listening(proc, port)
        finals = asyncio.run(_many(port, [HAM, LURE] * 4))
        assert finals.count(Accept()) == 4
        assert finals.count(Discard()) == 4
        (policies / "local.yaml").write_text("scoring: {thresholds: {tag: -5}}\n")  # invalid
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None
        assert asyncio.run(_one(port, LURE)) == Discard()  # old policy still in force
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = proc.stderr.read() if proc.stderr else ""
    assert "policy reload refused" in log
    assert "thresholds.tag" in log
    assert log.count("worker") >= 2
    assert len(list((tmp_path / "q").glob("*"))) > 0


async def _many(port: int, messages: list[bytes]) -> list[object]:
    return list(await asyncio.gather(*(_one(port, raw) for raw in messages)))


def test_serve_on_a_unix_socket_removes_it_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "milter.sock"
    proc = _start(tmp_path, "--milter", f"unix:{path}")
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.1)

        async def run() -> object:
            client = await MilterClient.open(path=path)
            await client.negotiate()
            await client.connect("localhost", "127.0.0.1")
            outcome = await client.message(HAM)
            await client.quit()
            return outcome.final

        assert asyncio.run(run()) == Accept()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not path.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--milter", "tcp:x"], 2, "milter.listen: 'tcp:x': unknown socket type"),
        (["--workers", "0"], 2, "milter.workers: Input should be greater"),
    ],
)
def test_serve_refuses_bad_settings(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    proc = _start(tmp_path, *args)
    assert proc.wait(timeout=30) == code
    assert message in (proc.stderr.read() if proc.stderr else "")


def test_serve_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _start(tmp_path, "--milter", f"inet:127.0.0.1:{port}")
        assert proc.wait(timeout=30) == 5
    assert "cannot start" in (proc.stderr.read() if proc.stderr else "")


def test_serve_refuses_an_invalid_policy(tmp_path: Path) -> None:
    policies = tmp_path / "p"
    policies.mkdir()
    (policies / "x.yaml").write_text("brands: {ameli: {name: 1}}\n")
    proc = _start(tmp_path, "--policy", str(policies), "--milter", f"inet:127.0.0.1:{_free_port()}")
    assert proc.wait(timeout=30) == 4
    assert "x.yaml:1" in (proc.stderr.read() if proc.stderr else "")
    assert os.path.isdir(tmp_path)


def test_serve_runs_the_milter_and_the_smtp_filter_together(tmp_path: Path) -> None:
    from tests.support.smtp_filter import send, smtp_sink, smtp_sink_missing

    if smtp_sink_missing():
        pytest.skip(str(smtp_sink_missing()))
    milter_port, smtp_port = _free_port(), _free_port()
    with smtp_sink() as sink:
        proc = _start(
            tmp_path,
            "--milter", f"inet:127.0.0.1:{milter_port}",
            "--smtp", f"127.0.0.1:{smtp_port}",
            "--next-hop", f"127.0.0.1:{sink.port}",
        )  # fmt: skip
        try:
            _wait_listening(proc, milter_port)
            _wait_listening(proc, smtp_port)
            assert asyncio.run(_one(milter_port, HAM)) == Accept()
            sent = send(smtp_port, HAM.replace(b"\n", b"\r\n"))
            assert sent.data is not None
            assert sent.data[0] == 250
            assert sink.count() == 1
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    log = proc.stderr.read() if proc.stderr else ""
    assert "SMTP filter on inet:127.0.0.1" in log
    assert "action=deliver" in log


def test_smtp_alone_does_not_start_the_milter(tmp_path: Path) -> None:
    smtp_port = _free_port()
    proc = _start(tmp_path, "--smtp", f"127.0.0.1:{smtp_port}")
    try:
        _wait_listening(proc, smtp_port)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:  # served, not just bound
            assert smtp.noop()[0] == 250
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    log = proc.stderr.read() if proc.stderr else ""
    assert "serving SMTP filter" in log
    assert "serving milter" not in log

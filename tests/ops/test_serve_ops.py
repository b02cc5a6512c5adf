"""tocsin serve in production shape: two workers, /metrics and /health, JSON logs, pid file,
tocsin status / reload, and a hot reload when a policy file changes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from milter.codec import Accept, Discard
from tests.frontends.test_serve_cli import HAM, LURE, ROOT, _free_port, _many, _wait_listening
from tests.support.cli import run_tocsin
from tests.support.milter_client import one_message


class Daemon:
    """A running ``tocsin serve`` with its log in a file."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port, self.metrics_port = _free_port(), _free_port()
        self.pid_file = tmp_path / "run" / "tocsin.pid"
        self.log_path = tmp_path / "tocsin.log"
        self.quarantine = tmp_path / "q"
        command = [sys.executable, "-m", "milter", "serve", "--no-dns"]
        command += ["--quarantine-dir", str(self.quarantine), "--pid-file", str(self.pid_file)]
        command += ["--milter", f"inet:127.0.0.1:{self.port}"]
        command += ["--metrics", f"127.0.0.1:{self.metrics_port}", *args]
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            command, cwd=ROOT, stderr=self.log, stdout=subprocess.DEVNULL, text=True
        )

    @property
    def metrics(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def wait_ready(self, workers: int) -> None:
        _wait_listening(self.proc, self.port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = self.health()
            if status == 200 and len(body["workers"]) == workers:
                return
            time.sleep(0.2)
        raise AssertionError(f"workers never all healthy: {self.health()}")

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://{self.metrics}/health", timeout=5) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)
        except OSError:
            return 0, {}

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def records(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Daemon] = []

    def start(*args: str) -> Daemon:
        daemon = Daemon(tmp_path, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_metrics_add_up_over_two_workers(daemon_factory: Any) -> None:
    daemon = daemon_factory("--workers", "2", "--log-format", "json")
    daemon.wait_ready(workers=2)
    pids: set[int] = set()
    sent = 0
    while len(pids) < 2 and sent < 200:  # until both workers have handled mail
        finals = asyncio.run(_many(daemon.port, [HAM, LURE] * 4))
        assert finals.count(Accept()) == 4
        assert finals.count(Discard()) == 4
        sent += 8
        time.sleep(0.2)
        pids = {r["pid"] for r in daemon.records() if r["logger"] == "tocsin.message"}
    assert len(pids) == 2, "the kernel never gave a connection to the second worker"
    samples = daemon.samples()
    assert total(samples, "tocsin_messages_total") == sent
    assert total(samples, "tocsin_messages_total", action="quarantine", brand="cpf") == sent / 2
    assert total(samples, "tocsin_messages_total", action="deliver", verdict="accept") == sent / 2
    assert total(samples, "tocsin_quarantine_writes_total", result="ok") == sent / 2
    assert total(samples, "tocsin_scan_seconds_count") == sent
    assert total(samples, "tocsin_findings_total", code="DISPLAY_NAME_BRAND") >= sent / 2
    assert total(samples, "tocsin_connections_total", frontend="milter") >= sent
    assert total(samples, "tocsin_connections_open", frontend="milter") == 0
    policy = {dict(ls)["pid"] for (n, ls), v in samples.items() if n == "tocsin_policy_info" and v}
    assert {str(p) for p in pids} == policy

    status, body = daemon.health()
    assert status == 200
    assert len(body["policies"]) == 1
    message = next(r for r in daemon.records() if r["logger"] == "tocsin.message")
    assert {"ts", "queue_id", "action", "verdict", "brand", "score", "rule", "codes"} <= set(
        message
    )
    assert {"client", "from", "rcpts", "size", "ms"} <= set(message)
    assert message["ts"][-6] in "+-"  # a UTC offset: +01:00
    assert message["ts"][-3] == ":"

    shown = run_tocsin("status", "--pid-file", str(daemon.pid_file), "--metrics", daemon.metrics)
    assert shown.returncode == 0, shown.stderr
    assert f"running, pid {daemon.proc.pid}" in shown.stdout
    assert "2 worker(s)" in shown.stdout

    stats = run_tocsin(
        "stats", "--metrics", daemon.metrics, "--quarantine-dir", str(daemon.quarantine), "--json"
    )
    assert stats.returncode == 0, stats.stderr
    report = json.loads(stats.stdout)
    assert report["since_start"]["messages"] == sent
    assert report["since_start"]["by_brand"]["cpf"] == {"quarantine": sent / 2}
    assert report["since_start"]["scan_ms"]["p50"] is not None
    assert report["quarantine"]["hour"] == {"messages": sent / 2, "by_brand": {"cpf": sent / 2}}
    human = run_tocsin(
        "stats", "--metrics", daemon.metrics, "--quarantine-dir", str(daemon.quarantine)
    )
    assert f"{sent} messages" in human.stdout
    assert f"last hour: {sent // 2} stored (cpf {sent // 2})" in human.stdout

    assert daemon.stop() == 0
    assert not daemon.pid_file.exists()
    stopped = run_tocsin("status", "--pid-file", str(daemon.pid_file))
    assert stopped.returncode == 3
    assert "not running" in stopped.stdout


async def _final_and_headers(port: int, raw: bytes) -> tuple[object, list[str]]:
    outcome = await one_message(port, raw)
    return outcome.final, [repr(edit) for edit in outcome.edits()]


def test_policy_change_reloads_and_reload_command(tmp_path: Path, daemon_factory: Any) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    daemon = daemon_factory("--workers", "2", "--policy", str(policies))
    daemon.wait_ready(workers=2)
    first = daemon.health()[1]["policies"]
    assert asyncio.run(_final_and_headers(daemon.port, LURE))[0] == Discard()

    (policies / "monitor.yaml").write_text("monitor: true\n")  # the watcher sees this
    deadline = time.monotonic() + 30
    second = first
    while time.monotonic() < deadline and (second == first or len(second) != 1):
        time.sleep(0.2)
        second = daemon.health()[1].get("policies", first)
    assert second != first
    assert len(second) == 1  # both workers run the new policy
    final, edits = asyncio.run(_final_and_headers(daemon.port, LURE))
    assert final == Accept()  # monitor mode: delivered
    # unchanged but for the verdict header: no body, subject, A-R or other header edit
    assert len(edits) == 1
    assert edits[0].startswith("AddHeader(")
    assert "X-Tocsin-Verdict" in edits[0]
    assert "verdict=accept; would=quarantine;" in edits[0]
    assert total(daemon.samples(), "tocsin_policy_reloads_total", result="ok") >= 2

    (policies / "monitor.yaml").write_text("monitor: maybe\n")  # invalid: refused, kept
    time.sleep(2)
    assert daemon.health()[1]["policies"] == second
    assert total(daemon.samples(), "tocsin_policy_reloads_total", result="refused") >= 2

    reloaded = run_tocsin("reload", "--pid-file", str(daemon.pid_file), "--metrics", daemon.metrics)
    assert reloaded.returncode == 0, reloaded.stderr
    assert f"reload signal sent to pid {daemon.proc.pid}" in reloaded.stdout
    assert "refused" in reloaded.stdout
    assert daemon.stop() == 0
    log = daemon.log_path.read_text()
    assert "policy files changed (monitor.yaml): reloading" in log
    assert "action=deliver verdict=accept would=quarantine brand=cpf" in log
    assert "Traceback" not in log

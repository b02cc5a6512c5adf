"""Two gateways, one PostgreSQL: real ``tocsin serve`` processes, the real CLI, a real
SMTP sink, a real private PostgreSQL that is stopped and started mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from milter.codec import Discard, ReplyCode, TempFail
from milter.review.passwords import hash_password
from tests.review.conftest import PASSWORD, USER, login
from tests.support.milter_client import MilterClient
from tests.support.pg import PgCluster, migrated_database

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
LURE = (ROOT / "docs" / "examples" / "cpf-lure.eml").read_bytes()
QID = re.compile(r"quarantine=([0-9]{8}T[0-9]{12}Z-[0-9a-f]{12})")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    """One ``tocsin serve`` process quarantining into the shared database."""

    name: str
    port: int
    config: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def held_ids(self) -> list[str]:
        return QID.findall(self.log.read_text(errors="replace"))


def _settings(tmp: Path, cluster: PgCluster, database: str, name: str, extra: str = "") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(
        "quarantine:\n"
        f"  directory: {tmp / ('q-' + name)}\n"
        f"  database: {cluster.dsn(database)}\n"
        f"  database_password_file: {cluster.password_file}\n"
        "  database_timeout_seconds: 2\n"
        f"  gateway: {name}\n" + extra
    )
    return path


def _start_gateway(tmp: Path, cluster: PgCluster, database: str, name: str) -> Gateway:
    port = _free_port()
    config = _settings(tmp, cluster, database, name)
    log = tmp / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "milter", "serve", "--no-dns", "--config", str(config),
             "--milter", f"inet:127.0.0.1:{port}"],
            cwd=ROOT, stdout=out, stderr=out,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Gateway(name, port, config, log, proc)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{name} did not listen: {log.read_text()}")


def _stop(gateway: Gateway) -> None:
    if gateway.proc.poll() is None:
        gateway.proc.terminate()
        try:
            gateway.proc.wait(30)
        except subprocess.TimeoutExpired:
            gateway.proc.kill()
            gateway.proc.wait()


@pytest.fixture
def gateways(
    own_pg_cluster: PgCluster, tmp_path: Path
) -> Iterator[tuple[PgCluster, str, list[Gateway]]]:
    """Two gateways on one fresh database of a cluster this test may stop."""
    database = migrated_database(own_pg_cluster)
    started: list[Gateway] = []
    try:
        for name in ("gw1", "gw2"):
            started.append(_start_gateway(tmp_path, own_pg_cluster, database, name))
        yield own_pg_cluster, database, started
    finally:
        for gateway in started:
            _stop(gateway)


async def _send(port: int, raw: bytes, rcpt: str) -> Any:
    client = await MilterClient.open(port=port)
    await client.negotiate()
    await client.connect()
    await client.helo("client.test")
    outcome = await client.message(raw, rcpts=(rcpt,))
    await client.quit()
    return outcome.final


def send(gateway: Gateway, rcpt: str) -> Any:
    """One message through ``gateway`` as an MTA would send it (in a thread of its own:
    Playwright's sync API may hold an event loop in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _send(gateway.port, LURE, rcpt)).result()


def _is_tempfail(reply: Any) -> bool:
    return isinstance(reply, TempFail) or (isinstance(reply, ReplyCode) and reply.code // 100 == 4)


def _cli(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "milter", "quarantine", *args, "--config", str(gateway.config)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "PG"))},
    )  # fmt: skip


def _listed(gateway: Gateway, *args: str) -> list[dict[str, Any]]:
    result = _cli(gateway, "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class _Sink:
    """aiosmtpd handler recording each message it accepts."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 2.0.0 Ok: queued"


def test_two_gateways_share_one_quarantine_and_a_release_delivers_once(
    gateways: tuple[PgCluster, str, list[Gateway]],
) -> None:
    _cluster, _database, (gw1, gw2) = gateways
    for n in range(3):
        assert send(gw1, f"alice{n}@example.net") == Discard()
        assert send(gw2, f"bob{n}@example.net") == Discard()
    held_1, held_2 = gw1.held_ids(), gw2.held_ids()
    assert len(held_1) == 3
    assert len(held_2) == 3
    # One CLI, on either gateway, sees what both held.
    for gateway in (gw1, gw2):
        listed = {r["id"] for r in _listed(gateway)}
        assert listed == set(held_1) | set(held_2)

    handler = _Sink()
    sink = Controller(handler, hostname="127.0.0.1", port=_free_port())
    sink.start()
    try:
        relay = f"127.0.0.1:{sink.port}"
        races = [held_1[0], held_2[0], held_2[1]]
        for qid in races:  # a reviewer on each gateway releases the same message at once
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "milter",
                        "quarantine",
                        "release",
                        qid,
                        "--relay",
                        relay,
                        "--config",
                        str(g.config),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for g in (gw1, gw2)
            ]
            codes = [p.wait(120) for p in procs]
            assert sorted(codes)[0] == 0, [p.stderr.read() for p in procs if p.stderr]
            assert sorted(codes)[1] != 0
    finally:
        sink.stop()
    delivered = [re.search(rb"X-Tocsin-Released: (\S+);", m) for m in handler.messages]
    assert sorted(m.group(1).decode() for m in delivered if m) == sorted(races)
    # held for impersonation, released without --false-positive: the banner stays (#16)
    assert all(b"<!-- tocsin-banner:start -->" in m for m in handler.messages)
    released = {r["id"] for r in _listed(gw1, "--status", "released")}
    assert released == set(races)


def test_postgresql_stopped_mid_run_tempfails_then_both_gateways_recover(
    gateways: tuple[PgCluster, str, list[Gateway]],
) -> None:
    cluster, _database, (gw1, gw2) = gateways
    assert send(gw1, "before1@example.net") == Discard()
    assert send(gw2, "before2@example.net") == Discard()
    cluster.stop()
    try:
        assert _is_tempfail(send(gw1, "during1@example.net"))
        assert _is_tempfail(send(gw2, "during2@example.net"))
    finally:
        cluster.start()
    recovered: dict[str, bool] = {}
    deadline = time.monotonic() + 90
    while len(recovered) < 2 and time.monotonic() < deadline:
        for gateway in (gw1, gw2):
            if gateway.name not in recovered:
                reply = send(gateway, f"after-{gateway.name}@example.net")
                if reply == Discard():
                    recovered[gateway.name] = True
                else:
                    assert _is_tempfail(reply)
        time.sleep(0.5)
    assert sorted(recovered) == ["gw1", "gw2"]
    assert gw1.proc.poll() is None
    assert gw2.proc.poll() is None
    rcpts = sorted(r["rcpts"][0] for r in _listed(gw1))
    # Held before and after; the tempfailed ones stay with the sending MTA, not half-stored.
    assert rcpts[:2] == ["after-gw1@example.net", "after-gw2@example.net"]
    assert rcpts[-2:] == ["before1@example.net", "before2@example.net"]
    assert not any(r.startswith("during") for r in rcpts)


def test_one_review_page_lists_and_releases_what_both_gateways_held(
    gateways: tuple[PgCluster, str, list[Gateway]], browser: Any, tmp_path: Path
) -> None:
    cluster, database, (gw1, gw2) = gateways
    assert send(gw1, "alice@example.net") == Discard()
    assert send(gw2, "bob@example.net") == Discard()
    (held_1,), (held_2,) = gw1.held_ids(), gw2.held_ids()
    handler = _Sink()
    sink = Controller(handler, hostname="127.0.0.1", port=_free_port())
    users = tmp_path / "review-users"
    users.write_text(f"{USER}:{hash_password(PASSWORD)}\n")
    port = _free_port()
    config = _settings(
        tmp_path, cluster, database, "review",
        f"  relay: 127.0.0.1:{sink.port}\n"
        f"review:\n  listen: 127.0.0.1:{port}\n  users_file: {users}\n  language: en\n",
    )  # fmt: skip
    sink.start()
    review = subprocess.Popen(
        [sys.executable, "-m", "milter", "review", "--config", str(config)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    context = browser.new_context(locale="en-GB")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert review.poll() is None
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        page = context.new_page()
        url = f"http://127.0.0.1:{port}"
        login(page, url)
        rows = page.locator("table.items tbody tr")
        assert rows.count() == 2
        listed = page.locator("table.items").inner_html()
        assert held_1 in listed
        assert held_2 in listed
        page.goto(f"{url}/m/{held_2}")  # held by the other gateway
        page.click("form.actions button[formaction$='/release']")
        page.wait_for_load_state()
        assert "250 2.0.0" in page.locator("p.flash.ok").inner_text()
    finally:
        context.close()
        review.terminate()
        review.wait(20)
        sink.stop()
    assert len(handler.messages) == 1
    assert handler.messages[0].startswith(b"X-Tocsin-Released: " + held_2.encode())
    states = {r["id"]: r["state"] for r in _listed(gw1)}
    assert states == {held_1: "held", held_2: "released"}

"""Real parts for the review page: a quarantine store, an aiosmtpd sink as the release
relay, ``tocsin review`` as its own process, and Debian's headless Chromium driven by
Playwright (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from milter.engine import scan
from milter.model.envelope import Envelope
from milter.policy.loader import load_policy
from milter.quarantine import QuarantineStore
from milter.review.passwords import hash_password
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USER, PASSWORD = "alice", "correct horse battery staple"
LURE_ENV = Envelope(
    client_ip="198.51.100.7",
    client_name="smtp.school.example",
    helo="smtp.school.example",
    mail_from="s12345@school.example",
    rcpts=("salarie@example.fr",),
)
#: Where the browser tests save their screenshots. A test run must not dirty the checkout,
#: so they go to a temporary folder unless TOCSIN_SCREENSHOTS names one (to refresh
#: docs/img: ``TOCSIN_SCREENSHOTS=docs/img .venv/bin/python -m pytest tests/review``).
SCREENSHOTS = Path(
    os.environ.get("TOCSIN_SCREENSHOTS") or Path(tempfile.gettempdir()) / "tocsin-screenshots"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lure_verdict(raw: bytes, envelope: Envelope = LURE_ENV) -> dict[str, Any]:
    """The verdict the shipped policy gives ``raw`` (no DNS), as the milter stores it.

    Run in a thread of its own: Playwright's sync API keeps an event loop running here."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, scan(raw, envelope, load_policy(None))).result()
    return result.verdict.as_dict()


@dataclass
class SinkMessage:
    mail_from: str
    rcpts: list[str]
    content: bytes


@dataclass
class SinkHandler:
    """An SMTP relay that records what it accepts; ``data_replies`` are answered first."""

    received: list[SinkMessage] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(
            SinkMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 2.0.0 Ok: queued as SINK7"


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    """A real aiosmtpd server on 127.0.0.1 (its own thread), stopped at the end."""
    from aiosmtpd.controller import Controller

    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@dataclass
class ReviewSite:
    """A running ``tocsin review`` and what it serves."""

    url: str
    store: QuarantineStore
    config: Path
    process: subprocess.Popen[bytes]
    allowlist: Path


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tocsin review exited early: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("tocsin review did not start listening within 30 s")


@contextmanager
def review_site(
    tmp_path: Path, relay_port: int, policy_dir: Path | None = None
) -> Iterator[ReviewSite]:
    """``tocsin review`` as its own process on a free loopback port, stopped at the end."""
    store = QuarantineStore(tmp_path / "quarantine")
    users = tmp_path / "review-users"
    users.write_text(f"{USER}:{hash_password(PASSWORD)}\n")
    allowlist = tmp_path / "policies" / "allowlist.yaml"
    allowlist.parent.mkdir()
    port = free_port()
    config = tmp_path / "tocsin.yaml"
    config.write_text(
        (f"policy_dir: {policy_dir}\n" if policy_dir else "")
        + f"quarantine:\n  directory: {store.directory}\n  relay: 127.0.0.1:{relay_port}\n"
        f"review:\n  listen: 127.0.0.1:{port}\n  users_file: {users}\n"
        f"  allowlist_file: {allowlist}\n  language: fr\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "milter", "review", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_listening(port, process)
        yield ReviewSite(f"http://127.0.0.1:{port}", store, config, process, allowlist)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def site(tmp_path: Path, sink: tuple[SinkHandler, int]) -> Iterator[ReviewSite]:
    """The review page with the shipped policy."""
    with review_site(tmp_path, sink[1]) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright; closed at the end of the module."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(f"Debian chromium not installed at {CHROMIUM} (README's test command)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is missing (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def lure(site: ReviewSite) -> str:
    """The CPF lure of docs/examples held with the verdict the shipped policy gives it."""
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    return site.store.put(raw, LURE_ENV, lure_verdict(raw))


def login(page: Any, url: str, user: str = USER, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()

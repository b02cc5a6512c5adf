"""Fixtures: a real MilterServer on a loopback socket, driven by the Postfix-like test client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from milter.frontends.listen import ListenAddress, bind
from milter.frontends.milter.server import MilterServer
from milter.frontends.service import MessageService
from milter.frontends.settings import MilterSettings
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from milter.quarantine.store import QuarantineStore
from tests.support.milter_client import MilterClient


class RunningMilter:
    """A server task plus what tests need to reach and inspect it."""

    def __init__(self, server: MilterServer, sock: socket.socket, store: QuarantineStore) -> None:
        self.server = server
        self.sock = sock
        self.store = store
        self.port = sock.getsockname()[1] if sock.family != socket.AF_UNIX else 0

    async def client(self) -> MilterClient:
        """A connected, negotiated client that already sent CONNECT and HELO."""
        if self.sock.family == socket.AF_UNIX:
            client = await MilterClient.open(path=Path(self.sock.getsockname()))
        else:
            client = await MilterClient.open(port=self.port)
        await client.negotiate()
        await client.connect()
        await client.helo("client.example.org")
        return client


@pytest.fixture
def policy_dir(tmp_path: Path) -> Callable[[str], Path]:
    """Write an admin policy file and return its directory."""

    def write(text: str) -> Path:
        directory = tmp_path / "policies"
        directory.mkdir(exist_ok=True)
        (directory / "local.yaml").write_text(text)
        return directory

    return write


@pytest.fixture
def start_milter(tmp_path: Path) -> Callable[..., Any]:
    """Start a server: ``async with start_milter(policy_dir=..., **settings) as milter``."""

    @asynccontextmanager
    async def start(
        policy_dir: Path | None = None,
        handler: MessageService | None = None,
        unix: bool = False,
        **settings: Any,
    ) -> AsyncIterator[RunningMilter]:
        store = QuarantineStore(tmp_path / "quarantine")
        if handler is None:
            handler = MessageService(
                PolicyStore(policy_dir, load_policy(policy_dir)), quarantine=store
            )
        address = (
            ListenAddress(path=tmp_path / "milter.sock") if unix else ListenAddress("127.0.0.1", 0)
        )
        sock = bind(address)
        server = MilterServer(MilterSettings(**settings), handler)
        task = asyncio.create_task(server.serve(sock))
        try:
            yield RunningMilter(server, sock, store)
        finally:
            server.request_stop()
            await asyncio.wait_for(task, 30)
            sock.close()

    return start

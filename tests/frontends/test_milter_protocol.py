"""`MilterProtocol` driven by hand through a fake transport: what it does per read."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

from milter.codec import (
    ActionFlag,
    Connect,
    Family,
    Header,
    Helo,
    MailFrom,
    OptNeg,
    ProtocolFlag,
    Rcpt,
)
from milter.codec.mta import encode_command
from milter.frontends.milter.assemble import AssemblyLimits
from milter.frontends.milter.connection import QUICKACK, MilterProtocol
from milter.frontends.milter.server import MilterServer
from milter.frontends.milter.session import MilterSession
from milter.frontends.service import MessageService
from milter.frontends.settings import MilterSettings
from milter.policy.store import PolicyStore

OFFER = OptNeg(6, ActionFlag(0x1FF), ProtocolFlag(0x1FFFFF))


class RecordingSocket:
    """A TCP socket as far as the protocol looks: records its setsockopt calls."""

    family = socket.AF_INET

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.calls.append((level, option, value))


class WrappedSocket:
    """asyncio's TransportSocket keeps the socket as ``_sock``."""

    family = socket.AF_INET

    def __init__(self, sock: RecordingSocket) -> None:
        self._sock = sock

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self._sock.setsockopt(level, option, value)


class FakeTransport(asyncio.Transport):
    def __init__(self, sock: Any) -> None:
        super().__init__()
        self.sock = sock
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self.sock, "peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def _server() -> MilterServer:
    return MilterServer(MilterSettings(), MessageService(PolicyStore(None)))


@dataclass(frozen=True)
class _Header(Header):
    """A subclass of a recorded command (the codec makes none; observe still records it)."""


async def test_quick_ack_is_set_again_after_every_read() -> None:
    if QUICKACK is None:
        return
    raw = RecordingSocket()
    protocol = MilterProtocol(_server())
    transport = FakeTransport(WrappedSocket(raw))
    protocol.connection_made(transport)
    quick = (socket.IPPROTO_TCP, QUICKACK, 1)
    assert raw.calls.count(quick) == 1  # at connect, with TCP_NODELAY
    commands = [
        OFFER,
        Connect("h", Family.INET, 25, "192.0.2.1"),
        Helo("h"),
        MailFrom("<a@b.test>"),
        Rcpt("<c@d.test>"),
    ]
    for count, command in enumerate(commands, start=2):
        protocol.data_received(encode_command(command))
        assert raw.calls.count(quick) == count
    assert protocol.session.in_message
    transport.close()
    protocol.connection_lost(None)


async def test_quick_ack_on_a_socket_without_a_wrapper() -> None:
    if QUICKACK is None:
        return
    raw = RecordingSocket()
    protocol = MilterProtocol(_server())
    protocol.connection_made(FakeTransport(raw))
    protocol.data_received(encode_command(OFFER))
    assert raw.calls.count((socket.IPPROTO_TCP, QUICKACK, 1)) == 2
    protocol.connection_lost(None)


async def test_reads_count_for_the_pace_and_the_idle_clock() -> None:
    protocol = MilterProtocol(_server())
    protocol.connection_made(FakeTransport(RecordingSocket()))
    for command in (OFFER, Connect("h", Family.INET, 25, "192.0.2.1"), MailFrom("<a@b>")):
        protocol.data_received(encode_command(command))
    before = asyncio.get_running_loop().time()
    data = encode_command(Rcpt("<c@d.test>"))
    protocol.data_received(data)
    assert protocol._pace.bytes == len(data)  # counted from MAIL FROM on
    assert before <= protocol._last_data <= asyncio.get_running_loop().time()
    protocol.connection_lost(None)


def test_observe_records_a_subclass_of_a_recorded_command() -> None:
    session = MilterSession(AssemblyLimits())
    session.observe(MailFrom("<a@b.test>"))
    session.observe(_Header("Subject", "hi"))
    request = session.end_of_message(b"", {})
    assert request.header_names == ("Subject",)
    assert request.message.to_bytes().startswith(b"Subject: hi\r\n\r\n")
    request.message.close()

"""An asyncio MTA-side milter client that plays Postfix, for tests and the load benchmark.

It speaks through the codec's MTA role (encode_command / ReplyReader), sends commands
the way Postfix 3.7 does (header values without the separator space unless
HDR_LEADSPC, folded lines joined by LF, body chunks of at most 65535 bytes) and honours
the NO*/NR_* bits the milter negotiated.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from milter.codec import (
    Abort,
    ActionFlag,
    BodyChunk,
    Command,
    Connect,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Family,
    Header,
    Helo,
    MailFrom,
    OptNeg,
    OptNegReply,
    Progress,
    ProtocolFlag,
    Quit,
    Rcpt,
    Reply,
    expects_reply,
)
from milter.codec.mta import ReplyReader, encode_command
from milter.codec.session import NEED_DATA

POSTFIX_ACTIONS = ActionFlag(0x1FF)
POSTFIX_PROTOCOL = ProtocolFlag(0x1FFFFF)
CHUNK = 65535
_NOT_SENT = {
    Connect: ProtocolFlag.NOCONNECT,
    Helo: ProtocolFlag.NOHELO,
    MailFrom: ProtocolFlag.NOMAIL,
    Rcpt: ProtocolFlag.NORCPT,
    Data: ProtocolFlag.NODATA,
    Header: ProtocolFlag.NOHDRS,
    EndOfHeaders: ProtocolFlag.NOEOH,
    BodyChunk: ProtocolFlag.NOBODY,
}


class MilterClosed(Exception):
    """The milter closed the connection."""


@dataclass
class MessageOutcome:
    """Every reply to the end of message, the final one last, and the progress count."""

    replies: list[Reply] = field(default_factory=list)
    progress: int = 0
    early: Reply | None = None  # a final reply before EOM (e.g. reject at MAIL)

    @property
    def final(self) -> Reply:
        """The reply that decided the message."""
        return self.early if self.early is not None else self.replies[-1]

    def edits(self) -> list[Reply]:
        """The modification replies (everything before the final one)."""
        return [] if self.early is not None else self.replies[:-1]


def split_message(raw: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Header (name, value) pairs as Postfix sends them (HDR_LEADSPC: value keeps its
    leading space) and the CRLF body."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, body = raw, b""
    headers: list[tuple[str, str]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + "\n" + line.decode("utf-8", "surrogateescape"))
        elif b":" in line:
            name_b, _, value_b = line.partition(b":")
            headers.append(
                (name_b.decode("ascii", "replace"), value_b.decode("utf-8", "surrogateescape"))
            )
    return headers, body


class MilterClient:
    """One milter connection, as an MTA holds it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._replies = ReplyReader()
        self.agreed: OptNegReply | None = None

    @classmethod
    async def open(
        cls, host: str = "127.0.0.1", port: int = 0, path: Path | None = None
    ) -> MilterClient:
        """Connect over TCP, or to the Unix socket ``path``."""
        if path is not None:
            reader, writer = await asyncio.open_unix_connection(str(path))
        else:
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    @property
    def protocol(self) -> ProtocolFlag:
        return self.agreed.protocol if self.agreed else ProtocolFlag.NONE

    async def negotiate(
        self,
        actions: ActionFlag = POSTFIX_ACTIONS,
        protocol: ProtocolFlag = POSTFIX_PROTOCOL,
        version: int = 6,
    ) -> OptNegReply:
        reply = await self._command(OptNeg(version, actions, protocol))
        assert isinstance(reply, OptNegReply), reply
        self.agreed = reply
        return reply

    async def _read_reply(self) -> Reply:
        while True:
            reply = self._replies.next_reply()
            if reply is not NEED_DATA:
                return reply  # type: ignore[return-value]
            data = await self._reader.read(65536)
            if not data:
                raise MilterClosed("milter closed the connection")
            self._replies.receive_data(data)

    async def _command(self, command: Command) -> Reply | None:
        """Send one command; return its reply, or None when none is due."""
        flag = _NOT_SENT.get(type(command))
        if flag is not None and flag in self.protocol:
            return None
        self._writer.write(encode_command(command))
        await self._writer.drain()
        if isinstance(command, OptNeg) or expects_reply(command, self.protocol):
            return await self._read_reply()
        return None

    async def connect(
        self, hostname: str = "localhost", address: str = "127.0.0.1", port: int = 40000
    ) -> Reply | None:
        family = Family.INET6 if ":" in address else Family.INET
        return await self._command(Connect(hostname, family, port, address))

    async def helo(self, name: str) -> Reply | None:
        return await self._command(Helo(name))

    async def message(
        self,
        raw: bytes,
        *,
        mail_from: str = "sender@example.org",
        rcpts: tuple[str, ...] = ("user@example.net",),
        queue_id: str = "4ABCDEF123",
    ) -> MessageOutcome:
        """One transaction MAIL → EOM; returns the end-of-message replies."""
        outcome = MessageOutcome()
        macros = {"i": queue_id}
        steps: list[Command] = [
            MailFrom(f"<{mail_from}>"),
            *(Rcpt(f"<{r}>") for r in rcpts),
            Data(macros=macros),
        ]
        headers, body = split_message(raw)
        leadspc = ProtocolFlag.HDR_LEADSPC in self.protocol
        for name, value in headers:
            steps.append(Header(name, value if leadspc else value.removeprefix(" "), macros=macros))
        steps.append(EndOfHeaders(macros=macros))
        steps.extend(BodyChunk(body[i : i + CHUNK]) for i in range(0, len(body), CHUNK))
        for step in steps:
            reply = await self._command(step)
            if reply is not None and type(reply).__name__ != "Continue":
                outcome.early = reply
                await self._command(Abort())
                return outcome
        self._writer.write(encode_command(EndOfMessage(macros=macros)))
        await self._writer.drain()
        while True:
            reply = await self._read_reply()
            if isinstance(reply, Progress):
                outcome.progress += 1
                continue
            outcome.replies.append(reply)
            if reply.FINAL:
                return outcome

    async def abort(self) -> None:
        await self._command(Abort())

    async def quit(self) -> None:
        self._writer.write(encode_command(Quit()))
        await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def send_raw(self, data: bytes) -> None:
        self._writer.write(data)

    async def read_raw(self) -> bytes:
        return await self._reader.read(65536)


async def one_message(port: int, raw: bytes) -> MessageOutcome:
    """A whole MTA session on 127.0.0.1:``port`` for one message: its end-of-message replies."""
    client = await MilterClient.open(port=port)
    await client.negotiate()
    await client.connect()
    await client.helo("client.test")
    outcome = await client.message(raw)
    await client.quit()
    return outcome

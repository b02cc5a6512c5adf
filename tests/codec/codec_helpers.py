"""Shared helpers for the codec tests: literal packets, scripted MTAs, three-way feeding."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence

from hypothesis import HealthCheck, settings

from milter.codec import (
    NEED_DATA,
    ActionFlag,
    BodyChunk,
    Command,
    Connect,
    ConnectionClosed,
    Continue,
    Data,
    EndOfHeaders,
    Event,
    Family,
    Header,
    Helo,
    MailFrom,
    MilterConnection,
    NegotiationRequest,
    OptNeg,
    ProtocolFlag,
    Rcpt,
    Reply,
    negotiate,
)
from milter.codec.mta import encode_command

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Hypothesis profile for the codec suite: modest, so the suite stays well under 30 s."""

POSTFIX_OFFER = OptNeg(6, ActionFlag(0x1FF), ProtocolFlag(0x1FFFFF))
TRAILING = b"\x00\x00\x00"  # the first bytes of a next packet's length prefix


def packet(code: bytes, payload: bytes = b"") -> bytes:
    """Build a packet by hand, independently of the codec's framing code."""
    return struct.pack(">I", len(payload) + 1) + code + payload


def drain(conn: MilterConnection) -> list[Event]:
    """Pull events until NEED_DATA (or ConnectionClosed)."""
    events: list[Event] = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
        if isinstance(event, ConnectionClosed):  # returned again on every call
            break
    return events


def answer(conn: MilterConnection, request: NegotiationRequest | None = None) -> bytes:
    """Reply to whatever is pending: negotiate() for OPTNEG, Continue otherwise."""
    pending = conn.pending_reply
    if pending is None:
        return b""
    if isinstance(pending, OptNeg):
        return conn.send(negotiate(pending, request))
    return conn.send(Continue())


def play(
    conn: MilterConnection, commands: Iterable[Command], request: NegotiationRequest | None = None
) -> list[Event]:
    """Play the MTA: send each command, collect events, answer every pending reply."""
    events: list[Event] = []
    for command in commands:
        conn.receive_data(encode_command(command))
        for event in drain(conn):
            events.append(event)
            answer(conn, request)
    return events


ENVELOPE: tuple[Command, ...] = (
    Connect("client.test", Family.INET, 25000, "192.0.2.1"),
    Helo("client.test"),
    MailFrom("<alice@sender.test>"),
    Rcpt("<bob@rcpt.test>"),
    Data(),
)
"""The commands before the headers, in order."""


def setup(
    commands: Sequence[Command] = (),
    offer: OptNeg = POSTFIX_OFFER,
    request: NegotiationRequest | None = None,
) -> Callable[[], MilterConnection]:
    """A factory of connections brought through negotiation and `commands`."""

    def make() -> MilterConnection:
        conn = MilterConnection()
        play(conn, [offer, *commands], request)
        return conn

    return make


def through(stage_name: str) -> tuple[Command, ...]:
    """Commands that bring a negotiated connection to the named stage."""
    prefix = {
        "negotiated": 0,
        "connected": 1,
        "helo": 2,
        "mail": 3,
        "rcpt": 4,
        "data": 5,
    }
    if stage_name in prefix:
        return ENVELOPE[: prefix[stage_name]]
    tail = {
        "header": (Header("Subject", "hi"),),
        "eoh": (Header("Subject", "hi"), EndOfHeaders()),
        "body": (Header("Subject", "hi"), EndOfHeaders(), BodyChunk(b"hello\r\n")),
    }
    return ENVELOPE + tail[stage_name]


def three_ways(
    make: Callable[[], MilterConnection], data: bytes, expected: Sequence[Event]
) -> None:
    """h11's tr(): feed `data` whole, byte by byte, and followed by a partial next packet."""
    conn = make()
    conn.receive_data(data)
    assert drain(conn) == list(expected), "whole input"

    conn = make()
    events: list[Event] = []
    for byte in data:
        conn.receive_data(bytes([byte]))
        events.extend(drain(conn))
    assert events == list(expected), "byte by byte"

    conn = make()
    conn.receive_data(data + TRAILING)
    assert drain(conn) == list(expected), "with trailing bytes"
    assert conn.next_event() is NEED_DATA


def replies_of(replies: Iterable[Reply]) -> bytes:
    """Encode replies with their own encode(), for comparisons."""
    return b"".join(reply.encode() for reply in replies)

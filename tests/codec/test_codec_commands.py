"""Byte layout of every MTA command: decoded three ways, and encoded back by the MTA role."""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
    LocalProtocolError,
    Macro,
    MailFrom,
    MilterConnection,
    OptNeg,
    ProtocolFlag,
    Quit,
    QuitNewConnection,
    Rcpt,
    RemoteProtocolError,
    Unknown,
)
from milter.codec.frames import Frame
from milter.codec.mta import encode_command
from milter.codec.readers import decode_command
from tests.codec.codec_helpers import packet, setup, three_ways, through

OPTNEG_WIRE = b"\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff"

# (stage the connection is brought to, packet(s) from the MTA, expected command)
CASES: list[tuple[str, bytes, Command]] = [
    ("fresh", packet(b"O", OPTNEG_WIRE), OptNeg(6, ActionFlag(0x1FF), ProtocolFlag(0x1FFFFF))),
    (
        "negotiated",
        packet(b"C", b"localhost\x004\xde\xec127.0.0.1\x00"),
        Connect("localhost", Family.INET, 57068, "127.0.0.1"),
    ),
    (
        "negotiated",
        packet(b"C", b"mx6.test\x006\x00\x19::1\x00"),
        Connect("mx6.test", Family.INET6, 25, "::1"),
    ),
    (
        "negotiated",
        packet(b"C", b"localhost\x00L\x00\x00/run/smtp.sock\x00"),
        Connect("localhost", Family.UNIX, 0, "/run/smtp.sock"),
    ),
    ("negotiated", packet(b"C", b"[192.0.2.9]\x00U"), Connect("[192.0.2.9]", Family.UNKNOWN)),
    (
        "negotiated",
        packet(b"D", b"Cj\x00mx.test.invalid\x00{daemon_addr}\x00127.0.0.1\x00")
        + packet(b"C", b"localhost\x004\x00\x19127.0.0.1\x00"),
        Connect(
            "localhost",
            Family.INET,
            25,
            "127.0.0.1",
            macros={"j": "mx.test.invalid", "{daemon_addr}": "127.0.0.1"},
        ),
    ),
    ("connected", packet(b"H", b"client.test\x00"), Helo("client.test")),
    (
        "helo",
        packet(b"M", b"<alice@sender.test>\x00SIZE=1200\x00BODY=8BITMIME\x00"),
        MailFrom("<alice@sender.test>", ("SIZE=1200", "BODY=8BITMIME")),
    ),
    ("helo", packet(b"M", b"<>\x00"), MailFrom("<>")),
    ("mail", packet(b"R", b"<bob@rcpt.test>\x00"), Rcpt("<bob@rcpt.test>")),
    (
        "mail",
        packet(b"R", b"<bob@rcpt.test>\x00NOTIFY=NEVER\x00"),
        Rcpt("<bob@rcpt.test>", ("NOTIFY=NEVER",)),
    ),
    (
        "rcpt",
        packet(b"D", b"Ti\x00B19C820C597\x00") + packet(b"T"),
        Data(macros={"i": "B19C820C597"}),
    ),
    ("data", packet(b"L", b"Subject\x00 hello\x00"), Header("Subject", " hello")),
    ("data", packet(b"L", b"X-Fold\x00part1\n\tpart2\x00"), Header("X-Fold", "part1\n\tpart2")),
    ("data", packet(b"L", b"X-Empty\x00\x00"), Header("X-Empty", "")),
    ("data", packet(b"L", b"Subject\x00caf\xe9\x00"), Header("Subject", "caf\udce9")),
    ("header", packet(b"N"), EndOfHeaders()),
    ("eoh", packet(b"B", b"hello\r\nworld\r\n"), BodyChunk(b"hello\r\nworld\r\n")),
    ("body", packet(b"E"), EndOfMessage()),
    ("body", packet(b"E", b"last\r\n"), EndOfMessage(b"last\r\n")),
    ("mail", packet(b"A"), Abort()),
    ("connected", packet(b"Q"), Quit()),
    ("connected", packet(b"K"), QuitNewConnection()),
    ("connected", packet(b"U", b"XFOO bar\x00"), Unknown("XFOO bar")),
]


def _factory(stage: str) -> Callable[[], MilterConnection]:
    return MilterConnection if stage == "fresh" else setup(through(stage))


@pytest.mark.parametrize(("stage", "wire", "command"), CASES, ids=lambda v: repr(v)[:40])
def test_decode_three_ways(stage: str, wire: bytes, command: Command) -> None:
    three_ways(_factory(stage), wire, [command])


@pytest.mark.parametrize(("stage", "wire", "command"), CASES, ids=lambda v: repr(v)[:40])
def test_mta_encoder_matches_layout(stage: str, wire: bytes, command: Command) -> None:
    assert encode_command(command) == wire


def test_envelope_mailbox_strips_angle_brackets() -> None:
    assert MailFrom("<alice@sender.test>").mailbox == "alice@sender.test"
    assert MailFrom("<>").mailbox == ""
    assert Rcpt("bare@rcpt.test").mailbox == "bare@rcpt.test"


MALFORMED = [
    (b"O", b"\x00" * 11),
    (b"O", b"\x00" * 13),
    (b"C", b""),
    (b"C", b"host\x00"),
    (b"C", b"host\x00X"),
    (b"C", b"host\x004\x00"),
    (b"C", b"host\x004\x00\x19127.0.0.1"),
    (b"C", b"host\x00U\x00\x19"),
    (b"C", b"host"),
    (b"H", b"client"),
    (b"H", b""),
    (b"H", b"a\x00b\x00"),
    (b"M", b""),
    (b"M", b"<a@b>"),
    (b"R", b""),
    (b"L", b"Subject\x00"),
    (b"L", b"Subject\x00a\x00b\x00"),
    (b"N", b"x"),
    (b"T", b"x"),
    (b"A", b"x"),
    (b"Q", b"x"),
    (b"K", b"x"),
    (b"U", b""),
    (b"D", b""),
    (b"D", b"Cj\x00"),
    (b"D", b"Zj\x00v\x00"),
    (b"D", b"O"),
    (b"D", b"C\x00v\x00"),
    (b"Z", b""),
    (b"c", b""),
]


@pytest.mark.parametrize(("code", "payload"), MALFORMED)
def test_malformed_packets_raise_remote_error(code: bytes, payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_command(Frame(code, payload))


def test_macro_packet_decodes() -> None:
    macro = decode_command(Frame(b"D", b"Mi\x00Q1\x00{mail_addr}\x00a@b\x00"))
    assert macro == Macro(b"M", {"i": "Q1", "{mail_addr}": "a@b"})


def test_macro_packet_without_values_is_allowed() -> None:
    assert decode_command(Frame(b"D", b"H")) == Macro(b"H", {})


@pytest.mark.parametrize(
    "build",
    [
        lambda: Helo("a\x00b"),
        lambda: Connect("h", Family.INET),
        lambda: Connect("h", Family.INET, 70000, "1.2.3.4"),
        lambda: Connect("h", Family.UNKNOWN, 25, "1.2.3.4"),
        lambda: Quit(macros={"i": "x"}),
        lambda: Helo("h", macros={"": "x"}),
        lambda: Header("a", "\ud800"),
        lambda: Macro(b"Q", {}),
        lambda: OptNeg(-1, ActionFlag.NONE, ProtocolFlag.NONE),
    ],
)
def test_invalid_commands_cannot_be_built(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LocalProtocolError):
        build()

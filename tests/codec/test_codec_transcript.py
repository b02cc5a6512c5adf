"""A realistic Postfix 3.7 exchange, replayed turn by turn, each turn fed three ways.

Modelled on the transcript observed against Postfix 3.7.11 (docs/milter-postfix.md,
appendix): NR_HDR + HDR_LEADSPC, an EOM macro list, add/insert/change header,
body replacement, quarantine then accept, two ABORTs after the verdict, QUIT.
"""

from __future__ import annotations

import pytest

from milter.codec import (
    NEED_DATA,
    Abort,
    Accept,
    AddHeader,
    BodyChunk,
    ChangeHeader,
    Connect,
    Continue,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Event,
    Family,
    Header,
    Helo,
    InsertHeader,
    MacroStage,
    MailFrom,
    MilterConnection,
    NegotiationRequest,
    OptNeg,
    OptNegReply,
    ProtocolFlag,
    Quarantine,
    Quit,
    Rcpt,
    ReplaceBodyChunk,
    Reply,
    Stage,
    negotiate,
    replace_body,
)
from milter.codec.mta import ReplyReader
from tests.codec.codec_helpers import POSTFIX_OFFER, TRAILING, drain, packet

REQUEST = NegotiationRequest(
    protocol=ProtocolFlag.NR_HDR | ProtocolFlag.HDR_LEADSPC,
    macros={MacroStage.EOM: ("i", "{auth_authen}", "{client_addr}", "{daemon_port}")},
)
EOM_MACROS = {"i": "B19C820C597", "{client_addr}": "127.0.0.1", "{daemon_port}": "10025"}
NEW_BODY = b"Replaced body.\r\n" * 5000  # 80 000 bytes: two REPLBODY packets

# Each turn: raw bytes Postfix sends, the events we expect, the replies we send.
Turn = tuple[bytes, list[Event], list[Reply]]


def turns() -> list[Turn]:
    connect_macros = packet(
        b"D",
        b"Cj\x00mx.test.invalid\x00{daemon_name}\x00mx.test.invalid\x00"
        b"{daemon_addr}\x00127.0.0.1\x00v\x00Postfix 3.7.11\x00_\x00localhost [127.0.0.1]\x00",
    )
    eom_macros = packet(
        b"D", b"Ei\x00B19C820C597\x00{client_addr}\x00127.0.0.1\x00{daemon_port}\x0010025\x00"
    )
    body_macros = packet(b"D", eom_macros[5:].replace(b"E", b"B", 1))
    headers = [
        Header("Date", " Mon, 23 Nov 2026 10:00:00 +0100", macros={"i": "B19C820C597"}),
        Header("From", " Alice <alice@sender.test>", macros={"i": "B19C820C597"}),
        Header("Subject", " hello\n\tfolded", macros={"i": "B19C820C597"}),
    ]
    header_bytes = b"".join(
        packet(b"D", b"Li\x00B19C820C597\x00") + packet(b"L", h.payload()) for h in headers
    )
    return [
        (
            packet(b"O", b"\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff"),
            [POSTFIX_OFFER],
            [negotiate(POSTFIX_OFFER, REQUEST)],
        ),
        (
            connect_macros + packet(b"C", b"localhost\x004\xde\xec127.0.0.1\x00"),
            [
                Connect(
                    "localhost",
                    Family.INET,
                    57068,
                    "127.0.0.1",
                    macros={
                        "j": "mx.test.invalid",
                        "{daemon_name}": "mx.test.invalid",
                        "{daemon_addr}": "127.0.0.1",
                        "v": "Postfix 3.7.11",
                        "_": "localhost [127.0.0.1]",
                    },
                )
            ],
            [Continue()],
        ),
        (
            packet(b"D", b"H") + packet(b"H", b"client.test\x00"),
            [Helo("client.test")],
            [Continue()],
        ),
        (
            packet(b"D", b"M{mail_addr}\x00alice@sender.test\x00{mail_mailer}\x00smtp\x00")
            + packet(b"M", b"<alice@sender.test>\x00SIZE=420\x00"),
            [
                MailFrom(
                    "<alice@sender.test>",
                    ("SIZE=420",),
                    macros={"{mail_addr}": "alice@sender.test", "{mail_mailer}": "smtp"},
                )
            ],
            [Continue()],
        ),
        (
            packet(b"D", b"R{rcpt_addr}\x00bob@rcpt.test\x00")
            + packet(b"R", b"<bob@rcpt.test>\x00"),
            [Rcpt("<bob@rcpt.test>", macros={"{rcpt_addr}": "bob@rcpt.test"})],
            [Continue()],
        ),
        (
            packet(b"D", b"Ti\x00B19C820C597\x00") + packet(b"T"),
            [Data(macros={"i": "B19C820C597"})],
            [Continue()],
        ),
        # NR_HDR: the headers and EOH arrive in one go; only EOH is answered
        (
            header_bytes + packet(b"D", b"Ni\x00B19C820C597\x00") + packet(b"N"),
            [*headers, EndOfHeaders(macros={"i": "B19C820C597"})],
            [Continue()],
        ),
        (
            body_macros + packet(b"B", b"Hello Bob,\r\nclick here\r\n"),
            [BodyChunk(b"Hello Bob,\r\nclick here\r\n", macros=EOM_MACROS)],
            [Continue()],
        ),
        (
            eom_macros + packet(b"E"),
            [EndOfMessage(macros=EOM_MACROS)],
            [
                AddHeader("X-Added", " yes"),
                InsertHeader(0, "X-Inserted-Top", " 1"),
                ChangeHeader(1, "Subject", " [WARNING] hello"),
                *replace_body(NEW_BODY),
                Quarantine("lookalike link found"),
                Accept(),
            ],
        ),
        (packet(b"A") + packet(b"A"), [Abort(), Abort()], []),
        (packet(b"Q"), [Quit()], []),
    ]


def feed_turn(conn: MilterConnection, data: bytes, mode: str) -> list[Event]:
    if mode != "bytewise":
        conn.receive_data(data)
        return drain(conn)
    events: list[Event] = []
    for byte in data:
        conn.receive_data(bytes([byte]))
        events.extend(drain(conn))
    return events


def run(mode: str) -> tuple[bytes, MilterConnection]:
    """Play all turns; in "trailing" mode each turn also carries the next turn's first bytes."""
    conn = MilterConnection()
    wires = [wire for wire, _, _ in turns()] + [b""]
    carried = 0
    out = b""
    for i, (wire, expected, replies) in enumerate(turns()):
        extra = wires[i + 1][: len(TRAILING)] if mode == "trailing" else b""
        assert feed_turn(conn, wire[carried:] + extra, mode) == expected, f"turn {i}"
        assert conn.next_event() is NEED_DATA
        carried = len(extra)
        out += b"".join(conn.send(reply) for reply in replies)
        assert conn.pending_reply is None, f"turn {i} left a reply due"
    return out, conn


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_postfix_transcript(mode: str) -> None:
    out, conn = run(mode)
    assert conn.stage is Stage.CLOSED
    reader = ReplyReader()
    reader.receive_data(out)
    got: list[Reply] = []
    while (reply := reader.next_reply()) is not NEED_DATA:
        got.append(reply)
    expected = [reply for _, _, replies in turns() for reply in replies]
    assert got == expected
    assert [len(r.data) for r in got if isinstance(r, ReplaceBodyChunk)] == [65535, 14465]


def test_transcript_negotiation_bytes() -> None:
    reply = turns()[0][2][0]
    assert isinstance(reply, OptNegReply)
    assert reply.encode() == packet(
        b"O",
        b"\x00\x00\x00\x06\x00\x00\x01\x33\x00\x10\x00\x80"
        b"\x00\x00\x00\x05i {auth_authen} {client_addr} {daemon_port}\x00",
    )


def test_transcript_verdict_bytes() -> None:
    eom_replies = turns()[8][2]
    wire = b"".join(r.encode() for r in eom_replies)
    assert wire.startswith(
        packet(b"h", b"X-Added\x00 yes\x00")
        + packet(b"i", b"\x00\x00\x00\x00X-Inserted-Top\x00 1\x00")
    )
    assert wire.endswith(packet(b"q", b"lookalike link found\x00") + packet(b"a"))


def test_postfix_offer_is_the_observed_one() -> None:
    assert OptNeg(6, POSTFIX_OFFER.actions, POSTFIX_OFFER.protocol) == POSTFIX_OFFER
    assert int(POSTFIX_OFFER.actions) == 0x1FF
    assert int(POSTFIX_OFFER.protocol) == 0x1FFFFF

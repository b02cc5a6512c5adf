"""Byte layout and validation of every milter reply; decoding by the MTA role."""

from __future__ import annotations

import pytest

from milter.codec import (
    MAX_BODY_CHUNK,
    NEED_DATA,
    Accept,
    ActionFlag,
    AddHeader,
    AddRcpt,
    AddRcptPar,
    ChangeFrom,
    ChangeHeader,
    Continue,
    DelRcpt,
    Discard,
    InsertHeader,
    LocalProtocolError,
    MacroStage,
    OptNegReply,
    Progress,
    ProtocolFlag,
    Quarantine,
    Reject,
    RemoteProtocolError,
    ReplaceBodyChunk,
    Reply,
    ReplyCode,
    Skip,
    TempFail,
    replace_body,
)
from milter.codec.frames import Frame
from milter.codec.mta import ReplyReader, decode_reply
from tests.codec.codec_helpers import TRAILING, packet

CASES: list[tuple[Reply, bytes]] = [
    (Continue(), packet(b"c")),
    (Accept(), packet(b"a")),
    (Reject(), packet(b"r")),
    (TempFail(), packet(b"t")),
    (Discard(), packet(b"d")),
    (Skip(), packet(b"s")),
    (Progress(), packet(b"p")),
    (ReplyCode(550, "5.7.1 Go away"), packet(b"y", b"550 5.7.1 Go away\x00")),
    (ReplyCode(451, "4.7.1 100% busy"), packet(b"y", b"451 4.7.1 100%% busy\x00")),
    (ReplyCode(421, "closing"), packet(b"y", b"421 closing\x00")),
    (Quarantine("lookalike link found"), packet(b"q", b"lookalike link found\x00")),
    (AddHeader("X-Added", " yes"), packet(b"h", b"X-Added\x00 yes\x00")),
    (AddHeader("X-Fold", "a\n\tb"), packet(b"h", b"X-Fold\x00a\n\tb\x00")),
    (InsertHeader(0, "X-Top", "1"), packet(b"i", b"\x00\x00\x00\x00X-Top\x001\x00")),
    (InsertHeader(1, "X-Second", "2"), packet(b"i", b"\x00\x00\x00\x01X-Second\x002\x00")),
    (
        ChangeHeader(1, "Subject", "[WARNING] hi"),
        packet(b"m", b"\x00\x00\x00\x01Subject\x00[WARNING] hi\x00"),
    ),
    (ChangeHeader(2, "X-Dup", ""), packet(b"m", b"\x00\x00\x00\x02X-Dup\x00\x00")),
    (ReplaceBodyChunk(b"new\r\nbody\r\n"), packet(b"b", b"new\r\nbody\r\n")),
    (AddRcpt("<carol@rcpt.test>"), packet(b"+", b"<carol@rcpt.test>\x00")),
    (DelRcpt("<bob@rcpt.test>"), packet(b"-", b"<bob@rcpt.test>\x00")),
    (AddRcptPar("<c@r.test>", "NOTIFY=NEVER"), packet(b"2", b"<c@r.test>\x00NOTIFY=NEVER\x00")),
    (AddRcptPar("<c@r.test>"), packet(b"2", b"<c@r.test>\x00")),
    (ChangeFrom("<bounce@s.test>", "RET=HDRS"), packet(b"e", b"<bounce@s.test>\x00RET=HDRS\x00")),
    (ChangeFrom("<>"), packet(b"e", b"<>\x00")),
    (
        OptNegReply(6, ActionFlag(0x33), ProtocolFlag.NR_HDR | ProtocolFlag.HDR_LEADSPC),
        packet(b"O", b"\x00\x00\x00\x06\x00\x00\x00\x33\x00\x10\x00\x80"),
    ),
    (
        OptNegReply(
            6,
            ActionFlag(0x133),
            ProtocolFlag.NONE,
            {MacroStage.EOM: ("i", "{auth_authen}"), MacroStage.CONNECT: ("{client_addr}",)},
        ),
        packet(
            b"O",
            b"\x00\x00\x00\x06\x00\x00\x01\x33\x00\x00\x00\x00"
            b"\x00\x00\x00\x00{client_addr}\x00"
            b"\x00\x00\x00\x05i {auth_authen}\x00",
        ),
    ),
]


def _read_all(reader: ReplyReader) -> list[Reply]:
    out: list[Reply] = []
    while (reply := reader.next_reply()) is not NEED_DATA:
        out.append(reply)
    return out


@pytest.mark.parametrize(("reply", "wire"), CASES, ids=lambda v: repr(v)[:40])
def test_reply_layout(reply: Reply, wire: bytes) -> None:
    assert reply.encode() == wire


@pytest.mark.parametrize(("reply", "wire"), CASES, ids=lambda v: repr(v)[:40])
def test_reply_decodes_three_ways(reply: Reply, wire: bytes) -> None:
    whole = ReplyReader()
    whole.receive_data(wire)
    assert _read_all(whole) == [reply]

    bytewise = ReplyReader()
    got: list[Reply] = []
    for byte in wire:
        bytewise.receive_data(bytes([byte]))
        got.extend(_read_all(bytewise))
    assert got == [reply]

    trailing = ReplyReader()
    trailing.receive_data(wire + TRAILING)
    assert _read_all(trailing) == [reply]
    assert not trailing.closed


def test_reader_reports_closed_after_clean_eof() -> None:
    reader = ReplyReader()
    reader.receive_data(packet(b"c"))
    reader.receive_data(b"")
    assert _read_all(reader) == [Continue()]
    assert reader.closed


@pytest.mark.parametrize(
    "build",
    [
        lambda: ReplyCode(250, "2.0.0 ok"),
        lambda: ReplyCode(600, "x"),
        lambda: ReplyCode(550, "4.7.1 class mismatch"),
        lambda: ReplyCode(450, "5.7.1 class mismatch"),
        lambda: ReplyCode(550, "line\r\nbreak"),
        lambda: ReplyCode(550, "lf\nonly"),
        lambda: ReplyCode(550, ""),
        lambda: ReplyCode(550, "nul\x00"),
        lambda: ReplyCode(550, "accentu\u00e9"),
        lambda: Quarantine(""),
        lambda: Quarantine("two\nlines"),
        lambda: AddHeader("Bad Name", "v"),
        lambda: AddHeader("X:Y", "v"),
        lambda: AddHeader("", "v"),
        lambda: AddHeader("X", "cr\r\n\tx"),
        lambda: AddHeader("X", "unfolded\nline"),
        lambda: AddHeader("X", "trailing\n"),
        lambda: AddHeader("X", "nul\x00"),
        lambda: InsertHeader(-1, "X", "v"),
        lambda: ChangeHeader(2**32, "X", "v"),
        lambda: ReplaceBodyChunk(b"x" * (MAX_BODY_CHUNK + 1)),
        lambda: AddRcpt("a\nb"),
        lambda: OptNegReply(1, ActionFlag.NONE, ProtocolFlag.NONE),
        lambda: OptNegReply(7, ActionFlag.NONE, ProtocolFlag.NONE),
        lambda: OptNegReply(6, ActionFlag.NONE, ProtocolFlag.NONE, {MacroStage.EOM: ("i",)}),
        lambda: OptNegReply(
            6, ActionFlag.SETSYMLIST, ProtocolFlag.NONE, {MacroStage.EOM: ("a b",)}
        ),
        lambda: OptNegReply(6, ActionFlag.SETSYMLIST, ProtocolFlag.NONE, {5: ("i",)}),
    ],
)
def test_invalid_replies_cannot_be_built(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LocalProtocolError):
        build()


def test_replace_body_splits_at_65535() -> None:
    body = bytes(range(256)) * 782  # 200192 bytes
    chunks = replace_body(body)
    assert [len(c.data) for c in chunks] == [65535, 65535, 65535, 3587]
    assert b"".join(c.data for c in chunks) == body


def test_replace_body_exact_multiple_and_custom_size() -> None:
    assert [len(c.data) for c in replace_body(b"x" * 131070)] == [65535, 65535]
    assert [c.data for c in replace_body(b"abcde", chunk_size=2)] == [b"ab", b"cd", b"e"]


def test_replace_body_empty_body_is_one_empty_chunk() -> None:
    assert replace_body(b"") == [ReplaceBodyChunk(b"")]


@pytest.mark.parametrize("size", [0, MAX_BODY_CHUNK + 1])
def test_replace_body_rejects_bad_chunk_size(size: int) -> None:
    with pytest.raises(LocalProtocolError):
        replace_body(b"x", chunk_size=size)


@pytest.mark.parametrize(
    ("code", "payload"),
    [
        (b"c", b"x"),
        (b"y", b"550 5.7.1 100% bad\x00"),
        (b"y", b"5x0 nope\x00"),
        (b"y", b"550\x00"),
        (b"y", b"250 2.0.0 ok\x00"),
        (b"y", b"550 no nul"),
        (b"h", b"X\x00"),
        (b"i", b"\x00\x00"),
        (b"m", b"\x00\x00\x00\x01X\x00"),
        (b"q", b"\x00"),
        (b"O", b"\x00\x00\x00\x06"),
        (b"O", b"\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09i\x00"),
        (b"O", b"\x00\x00\x00\x06\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x05i"),
        (b"O", b"\x00\x00\x00\x06\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"),
        (b"e", b""),
        (b"2", b"a\x00b\x00c\x00"),
        (b"f", b""),
        (b"4", b""),
    ],
)
def test_malformed_replies_raise_remote_error(code: bytes, payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_reply(Frame(code, payload))


def test_final_and_eom_only_markers() -> None:
    finals = {type(r) for r, _ in CASES if r.FINAL}
    assert finals == {Continue, Accept, Reject, TempFail, Discard, Skip, ReplyCode}
    assert Quarantine.EOM_ONLY
    assert not Quarantine.FINAL
    assert Progress.EOM_ONLY
    assert Progress.REQUIRES == ActionFlag.NONE
    assert ChangeHeader.REQUIRES == ActionFlag.CHGHDRS
    assert InsertHeader.REQUIRES == AddHeader.REQUIRES == ActionFlag.ADDHDRS

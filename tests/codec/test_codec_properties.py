"""Hypothesis properties: round trips through the MTA encoder, and garbage never escapes."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from milter.codec import (
    NEED_DATA,
    Abort,
    AddHeader,
    AddRcpt,
    AddRcptPar,
    BodyChunk,
    ChangeFrom,
    ChangeHeader,
    Command,
    Connect,
    ConnectionClosed,
    Continue,
    Data,
    DelRcpt,
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
    OptNeg,
    OptNegReply,
    ProtocolFlag,
    Quarantine,
    Quit,
    QuitNewConnection,
    Rcpt,
    RemoteProtocolError,
    ReplaceBodyChunk,
    Reply,
    ReplyCode,
    Stage,
    Unknown,
    negotiate,
)
from milter.codec.commands import MACRO_CODES
from milter.codec.frames import Frame, FrameBuffer
from milter.codec.mta import ReplyReader, decode_reply, encode_command
from milter.codec.readers import decode_command, decode_packet
from tests.codec.codec_helpers import FAST, POSTFIX_OFFER, answer, drain, packet, play

# --- strategies -----------------------------------------------------------------

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
raw_text = (
    st.binary(max_size=30)
    .filter(lambda b: b"\x00" not in b)
    .map(lambda b: b.decode("utf-8", "surrogateescape"))
)
any_text = text | raw_text
macro_values = st.dictionaries(any_text.filter(bool), any_text, max_size=4)
uint32 = st.integers(0, 2**32 - 1)


@st.composite
def connects(draw: st.DrawFn) -> Connect:
    family = draw(st.sampled_from(Family))
    if family is Family.UNKNOWN:
        return Connect(draw(any_text), family, macros=draw(macro_values))
    return Connect(
        draw(any_text),
        family,
        draw(st.integers(0, 65535)),
        draw(any_text),
        macros=draw(macro_values),
    )


envelope_args = st.lists(any_text, max_size=3).map(tuple)
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(OptNeg, uint32, uint32.map(lambda v: v), uint32.map(ProtocolFlag)),
    connects(),
    st.builds(Helo, any_text, macros=macro_values),
    st.builds(MailFrom, any_text, envelope_args, macros=macro_values),
    st.builds(Rcpt, any_text, envelope_args, macros=macro_values),
    st.builds(Data, macros=macro_values),
    st.builds(Header, any_text, any_text, macros=macro_values),
    st.builds(EndOfHeaders, macros=macro_values),
    st.builds(BodyChunk, st.binary(max_size=200), macros=macro_values),
    st.builds(EndOfMessage, st.binary(max_size=200), macros=macro_values),
    st.builds(Unknown, any_text, macros=macro_values),
    st.sampled_from([Abort(), Quit(), QuitNewConnection()]),
)

header_names = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"),
    min_size=1,
    max_size=20,
)
header_values = st.lists(
    any_text.filter(lambda t: "\n" not in t and "\r" not in t), min_size=1, max_size=3
).map("\n\t".join)
line = any_text.filter(lambda t: "\n" not in t and "\r" not in t)
ascii_line = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40)
macro_name = st.text(
    st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters="\x00 "),
    min_size=1,
    max_size=10,
)
replies: st.SearchStrategy[Reply] = st.one_of(
    st.builds(AddHeader, header_names, header_values),
    st.builds(InsertHeader, uint32, header_names, header_values),
    st.builds(ChangeHeader, uint32, header_names, header_values),
    st.builds(ReplaceBodyChunk, st.binary(max_size=300)),
    st.builds(Quarantine, line.filter(bool)),
    st.builds(AddRcpt, line),
    st.builds(DelRcpt, line),
    st.builds(AddRcptPar, line, line),
    st.builds(ChangeFrom, line, line),
    st.builds(ReplyCode, st.integers(400, 599), ascii_line.filter(lambda t: t[0] not in "2345")),
    st.builds(
        OptNegReply,
        st.integers(2, 6),
        st.just(0x133),
        uint32.map(ProtocolFlag),
        st.dictionaries(
            st.sampled_from(MacroStage), st.lists(macro_name, max_size=4).map(tuple), max_size=3
        ),
    ),
)


# --- round trips ----------------------------------------------------------------


def decode_stream(data: bytes) -> list[Command]:
    """Decode MTA bytes statelessly, attaching macros like the session does."""
    buffer = FrameBuffer()
    buffer.feed(data)
    out: list[Command] = []
    pending: dict[str, str] = {}
    while (frame := buffer.next_frame()) is not None:
        event = decode_command(frame)
        if isinstance(event, Command):
            out.append(dataclasses.replace(event, macros=pending) if pending else event)
            pending = {}
        else:
            pending = dict(event.values)
    return out


@FAST
@given(st.lists(commands, max_size=5))
def test_commands_round_trip_through_the_mta_encoder(cmds: list[Command]) -> None:
    assert decode_stream(b"".join(encode_command(c) for c in cmds)) == cmds


@FAST
@given(replies)
def test_replies_round_trip(reply: Reply) -> None:
    assert decode_reply(Frame(reply.CODE, reply.payload())) == reply
    reader = ReplyReader()
    reader.receive_data(reply.encode())
    assert reader.next_reply() == reply


@FAST
@given(
    st.lists(st.lists(st.binary(min_size=1, max_size=40), max_size=4), min_size=1, max_size=3),
    st.lists(st.binary(max_size=500), max_size=4),
    st.data(),
)
def test_random_transactions_survive_random_chunking(
    headers: list[list[bytes]], body: list[bytes], data: st.DataObject
) -> None:
    """A valid session, delivered in random slices per turn, gives the same events."""
    hdrs = [
        Header(f"X-{i}", h.decode("latin-1").replace("\x00", ""))
        for i, hs in enumerate(headers)
        for h in hs
    ]
    script: list[Command] = [
        Connect("h", Family.INET6, 25, "2001:db8::1"),
        MailFrom("<a@b>", macros={"{mail_addr}": "a@b"}),
        Rcpt("<c@d>"),
        Data(macros={"i": "Q1"}),
        *hdrs,
        EndOfHeaders(),
        *(BodyChunk(b) for b in body),
        EndOfMessage(),
        Quit(),
    ]
    conn = MilterConnection()
    play(conn, [POSTFIX_OFFER])
    seen: list[Event] = []
    for command in script:
        wire = encode_command(command)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=3)))
        for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
            if end > start:  # an empty slice would mean end of stream
                conn.receive_data(wire[start:end])
                seen.extend(drain(conn))
        answer(conn)
    assert seen == script
    assert conn.stage is Stage.CLOSED


# --- garbage only ever raises RemoteProtocolError -------------------------------


def pump(conn: MilterConnection, chunks: list[bytes]) -> None:
    """Drive like a server: feed, drain, answer; any ProtocolError but Remote is a bug."""
    try:
        for chunk in [*chunks, b""]:
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not NEED_DATA:
                if isinstance(event, ConnectionClosed):
                    return
                pending = conn.pending_reply
                if isinstance(pending, OptNeg):
                    conn.send(negotiate(pending))
                elif pending is not None:
                    conn.send(Continue())
    except RemoteProtocolError:
        assert conn.stage is Stage.ERROR


@FAST
@given(st.lists(st.binary(min_size=1, max_size=64), max_size=6))
def test_random_bytes_only_raise_remote_errors(chunks: list[bytes]) -> None:
    pump(MilterConnection(max_frame_size=4096), chunks)


codes = st.sampled_from(list(b"OCHMRTLNBEAQKUD")).map(lambda c: bytes([c])) | st.binary(
    min_size=1, max_size=1
)


@FAST
@given(st.lists(st.tuples(codes, st.binary(max_size=40)), max_size=12), st.booleans())
def test_random_well_framed_packets_only_raise_remote_errors(
    frames: list[tuple[bytes, bytes]], negotiated: bool
) -> None:
    conn = MilterConnection()
    if negotiated:
        play(conn, [POSTFIX_OFFER])
    pump(conn, [packet(code, payload) for code, payload in frames])


@FAST
@given(st.lists(st.tuples(codes, st.binary(max_size=40)), max_size=8))
def test_random_packets_after_a_transaction_start(frames: list[tuple[bytes, bytes]]) -> None:
    conn = MilterConnection()
    play(conn, [POSTFIX_OFFER, Connect("h", Family.UNKNOWN), MailFrom("<a@b>"), Rcpt("<c@d>")])
    pump(conn, [packet(code, payload) for code, payload in frames])


@FAST
@given(st.lists(st.binary(min_size=1, max_size=64), max_size=6))
def test_reply_reader_garbage_only_raises_remote_errors(chunks: list[bytes]) -> None:
    reader = ReplyReader(max_frame_size=4096)
    try:
        for chunk in chunks:
            reader.receive_data(chunk)
            while reader.next_reply() is not NEED_DATA:
                pass
    except RemoteProtocolError:
        pass


# --- the readers build commands without the constructors' checks -----------------


def checked_copy(event: object) -> object:
    """The same event through its class's checked constructor (`__post_init__`)."""
    assert dataclasses.is_dataclass(event)
    assert not isinstance(event, type)
    return dataclasses.replace(event)


@FAST
@given(codes, st.binary(max_size=60), macro_values)
def test_whatever_a_reader_builds_passes_the_checked_constructor(
    code: bytes, payload: bytes, macros: dict[str, str]
) -> None:
    """decode_packet skips `__post_init__`: anything it accepts must be what the checked
    constructor would build from the same fields, so the shortcut changes nothing. (The
    session only ever passes macros announced for a command that may carry them.)"""
    if code[0] not in MACRO_CODES or code == b"D":
        macros = {}
    try:
        event = decode_packet(code, payload, MappingProxyType(macros))
    except RemoteProtocolError:
        return
    assert checked_copy(event) == event
    assert type(checked_copy(event)) is type(event)
    if isinstance(event, Command):
        assert dict(event.macros) == macros


@FAST
@given(commands)
def test_decoding_a_command_equals_the_checked_command(command: Command) -> None:
    wire = encode_command(command)
    buffer = FrameBuffer()
    buffer.feed(wire)
    packets = []
    while (packet_ := buffer.next_packet()) is not None:
        packets.append(packet_)
    code, payload = packets[-1]
    decoded = decode_packet(code, payload, command.macros)
    assert decoded == command
    assert repr(decoded) == repr(command)

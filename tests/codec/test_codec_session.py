"""MilterConnection: reply rules, NR_* flags, macros, end of stream, error states."""

from __future__ import annotations

from typing import cast

import pytest

from milter.codec import (
    NEED_DATA,
    Abort,
    Accept,
    ActionFlag,
    AddHeader,
    BodyChunk,
    ChangeHeader,
    Command,
    Connect,
    ConnectionClosed,
    Continue,
    Data,
    Discard,
    EndOfHeaders,
    EndOfMessage,
    Family,
    Header,
    Helo,
    InsertHeader,
    LocalProtocolError,
    MailFrom,
    MilterConnection,
    NegotiationRequest,
    OptNeg,
    Progress,
    ProtocolFlag,
    Quarantine,
    QuitNewConnection,
    Rcpt,
    Reject,
    RemoteProtocolError,
    ReplaceBodyChunk,
    Reply,
    ReplyCode,
    Skip,
    Stage,
    TempFail,
    Unknown,
    expects_reply,
    lookup_macro,
)
from milter.codec.mta import encode_command
from milter.codec.session import silent_codes
from tests.codec.codec_helpers import drain, packet, replies_of, setup, through


def feed(conn: MilterConnection, *commands: Command) -> list[object]:
    conn.receive_data(b"".join(encode_command(c) for c in commands))
    return list(drain(conn))


def at_eom(request: NegotiationRequest | None = None) -> MilterConnection:
    conn = setup(through("body"), request=request)()
    assert feed(conn, EndOfMessage()) == [EndOfMessage()]
    return conn


# --- NR_* flags -----------------------------------------------------------------

NR_CASES = [
    (ProtocolFlag.NR_CONN, "negotiated", Connect("h", Family.INET, 1, "192.0.2.1")),
    (ProtocolFlag.NR_HELO, "connected", Helo("h")),
    (ProtocolFlag.NR_MAIL, "helo", MailFrom("<a@b>")),
    (ProtocolFlag.NR_RCPT, "mail", Rcpt("<c@d>")),
    (ProtocolFlag.NR_DATA, "rcpt", Data()),
    (ProtocolFlag.NR_HDR, "data", Header("Subject", "x")),
    (ProtocolFlag.NR_EOH, "header", EndOfHeaders()),
    (ProtocolFlag.NR_BODY, "eoh", BodyChunk(b"x")),
    (ProtocolFlag.NR_UNKN, "connected", Unknown("XFOO")),
]


@pytest.mark.parametrize(("flag", "stage", "command"), NR_CASES, ids=lambda v: repr(v)[:30])
def test_nr_flag_means_no_reply(flag: ProtocolFlag, stage: str, command: Command) -> None:
    conn = setup(through(stage), request=NegotiationRequest(protocol=flag))()
    assert feed(conn, command) == [command]
    assert conn.pending_reply is None
    with pytest.raises(LocalProtocolError, match="no reply is due"):
        conn.send(Continue())


@pytest.mark.parametrize(("flag", "stage", "command"), NR_CASES, ids=lambda v: repr(v)[:30])
def test_without_nr_flag_a_reply_is_due(flag: ProtocolFlag, stage: str, command: Command) -> None:
    conn = setup(through(stage))()
    assert feed(conn, command) == [command]
    assert conn.pending_reply == command
    assert conn.send(Continue()) == packet(b"c")


def test_nr_hdr_lets_headers_stream_without_replies() -> None:
    conn = setup(through("data"), request=NegotiationRequest(protocol=ProtocolFlag.NR_HDR))()
    headers = [Header(f"X-{i}", str(i)) for i in range(5)]
    assert feed(conn, *headers, EndOfHeaders()) == [*headers, EndOfHeaders()]
    assert conn.pending_reply == EndOfHeaders()


@pytest.mark.parametrize("command", [Abort(), QuitNewConnection()])
def test_commands_that_never_get_replies(command: Command) -> None:
    conn = setup(through("mail"))()
    assert feed(conn, command) == [command]
    with pytest.raises(LocalProtocolError):
        conn.send(Continue())


# --- replies in the wrong place -------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        AddHeader("X", "y"),
        InsertHeader(0, "X", "y"),
        ChangeHeader(1, "X", "y"),
        ReplaceBodyChunk(b"x"),
        Quarantine("why"),
        Progress(),
    ],
)
def test_eom_only_replies_refused_at_rcpt(reply: Reply) -> None:
    conn = setup(through("mail"))()
    feed(conn, Rcpt("<c@d>"))
    with pytest.raises(LocalProtocolError, match="end of message"):
        conn.send(reply)
    assert conn.pending_reply == Rcpt("<c@d>")  # unchanged: a valid reply still works
    assert conn.send(Continue()) == packet(b"c")


def test_no_reply_due_between_commands() -> None:
    conn = setup(through("helo"))()
    with pytest.raises(LocalProtocolError, match="no reply is due"):
        conn.send(Accept())


def test_mta_sending_before_our_reply_is_remote_error() -> None:
    conn = setup(through("mail"))()
    conn.receive_data(encode_command(Rcpt("<c@d>")) + encode_command(Rcpt("<e@f>")))
    assert conn.next_event() == Rcpt("<c@d>")
    with pytest.raises(RemoteProtocolError, match="before our reply"):
        conn.next_event()
    assert conn.stage is Stage.ERROR
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_discard_refused_at_connect_level() -> None:
    conn = setup(through("connected"))()
    feed(conn, Helo("h"))
    with pytest.raises(LocalProtocolError, match="Discard"):
        conn.send(Discard())
    assert conn.send(Reject()) == packet(b"r")


def test_skip_needs_body_and_offer() -> None:
    conn = setup(through("eoh"))()
    feed(conn, BodyChunk(b"x"))
    assert conn.send(Skip()) == packet(b"s")
    assert feed(conn, EndOfMessage()) == [EndOfMessage()]

    no_skip = OptNeg(6, ActionFlag(0x1FF), ProtocolFlag(0x1FFFFF) & ~ProtocolFlag.SKIP)
    conn = setup(through("eoh"), offer=no_skip)()
    feed(conn, BodyChunk(b"x"))
    with pytest.raises(LocalProtocolError, match="SKIP"):
        conn.send(Skip())

    conn = setup(through("mail"))()
    feed(conn, Rcpt("<c@d>"))
    with pytest.raises(LocalProtocolError, match="body chunk"):
        conn.send(Skip())


# --- end of message ---------------------------------------------------------------


def test_eom_modifications_then_final_reply() -> None:
    conn = at_eom()
    replies = [
        AddHeader("X-Added", "1"),
        InsertHeader(0, "X-Top", "1"),
        ChangeHeader(1, "Subject", "new"),
        Quarantine("held"),
        Progress(),
    ]
    out = b"".join(conn.send(r) for r in replies)
    assert out == replies_of(replies)
    assert conn.pending_reply == EndOfMessage()
    assert conn.stage is Stage.EOM
    conn.send(Accept())
    assert conn.pending_reply is None
    assert conn.stage is Stage.CONNECTED


def test_body_replacement_must_be_contiguous() -> None:
    conn = at_eom()
    conn.send(ReplaceBodyChunk(b"a"))
    conn.send(ReplaceBodyChunk(b"b"))
    conn.send(AddHeader("X", "1"))
    with pytest.raises(LocalProtocolError, match="contiguous"):
        conn.send(ReplaceBodyChunk(b"c"))
    conn.send(Continue())
    # the rule is per message
    feed(conn, MailFrom("<a@b>"))
    conn.send(Continue())
    conn = at_eom()
    conn.send(AddHeader("X", "1"))
    conn.send(ReplaceBodyChunk(b"a"))
    conn.send(ReplaceBodyChunk(b"b"))


def test_body_replacement_rule_starts_again_at_the_next_end_of_message() -> None:
    conn = at_eom()
    conn.send(ReplaceBodyChunk(b"a"))
    conn.send(AddHeader("X", "1"))
    conn.send(Accept())
    for command in (MailFrom("<a@b>"), Rcpt("<c@d>"), EndOfMessage()):
        feed(conn, command)
        if conn.pending_reply is not None and command.CODE != b"E":
            conn.send(Continue())
    assert conn.stage is Stage.EOM
    conn.send(ReplaceBodyChunk(b"b"))  # the same connection, the next message
    conn.send(Accept())


def test_eom_with_trailing_body_data() -> None:
    conn = setup(through("eoh"))()
    assert feed(conn, EndOfMessage(b"tail\r\n")) == [EndOfMessage(b"tail\r\n")]


def test_abort_after_eom_twice_then_new_message() -> None:
    conn = at_eom()
    conn.send(Continue())
    assert feed(conn, Abort(), Abort()) == [Abort(), Abort()]
    assert feed(conn, MailFrom("<a@b>")) == [MailFrom("<a@b>")]


# --- verdicts that end a transaction ----------------------------------------------


@pytest.mark.parametrize(
    "reply", [Reject(), TempFail(), ReplyCode(550, "5.7.1 no"), Accept(), Discard()]
)
def test_verdict_at_mail_ends_the_transaction(reply: Reply) -> None:
    conn = setup(through("helo"))()
    feed(conn, MailFrom("<a@b>"))
    conn.send(reply)
    assert conn.stage is Stage.CONNECTED
    assert feed(conn, MailFrom("<x@y>")) == [MailFrom("<x@y>")]


@pytest.mark.parametrize("reply", [Reject(), TempFail(), ReplyCode(450, "4.2.0 later")])
def test_refusing_a_recipient_keeps_the_transaction(reply: Reply) -> None:
    conn = setup(through("mail"))()
    feed(conn, Rcpt("<c@d>"))
    conn.send(reply)
    assert conn.stage is Stage.RCPT
    assert feed(conn, Rcpt("<e@f>")) == [Rcpt("<e@f>")]


def test_accept_at_rcpt_ends_the_transaction() -> None:
    conn = setup(through("mail"))()
    feed(conn, Rcpt("<c@d>"))
    conn.send(Accept())
    assert conn.stage is Stage.CONNECTED
    with pytest.raises(RemoteProtocolError):
        feed(conn, Data())


# --- macros -------------------------------------------------------------------


def test_macros_attach_to_the_next_command_and_accumulate() -> None:
    conn = setup()()
    connect = Connect("h", Family.INET, 25, "192.0.2.1", macros={"j": "mx", "_": "h [192.0.2.1]"})
    assert feed(conn, connect) == [connect]
    conn.send(Continue())
    mail = MailFrom("<a@b>", macros={"{mail_addr}": "a@b"})
    assert feed(conn, mail) == [mail]
    conn.send(Continue())
    assert conn.macros == {"j": "mx", "_": "h [192.0.2.1]", "{mail_addr}": "a@b"}
    assert lookup_macro(conn.macros, "mail_addr") == "a@b"
    assert lookup_macro(conn.macros, "{j}") == "mx"
    assert lookup_macro(conn.macros, "i") is None


def test_abort_drops_message_macros_but_keeps_connection_macros() -> None:
    conn = setup()()
    feed(conn, Connect("h", Family.INET, 25, "192.0.2.1", macros={"j": "mx"}))
    conn.send(Continue())
    feed(conn, MailFrom("<a@b>", macros={"{mail_addr}": "a@b"}))
    conn.send(Continue())
    feed(conn, Abort())
    assert conn.macros == {"j": "mx"}
    feed(conn, QuitNewConnection())
    assert conn.macros == {}


def test_new_mail_forgets_previous_message_macros() -> None:
    conn = setup(through("mail"))()
    feed(conn, Rcpt("<c@d>", macros={"{rcpt_addr}": "c@d"}))
    conn.send(Continue())
    feed(conn, Data(macros={"i": "Q1"}))
    conn.send(Reject())
    feed(conn, MailFrom("<x@y>", macros={"{mail_addr}": "x@y"}))
    assert "i" not in conn.macros
    assert "{rcpt_addr}" not in conn.macros
    assert conn.macros["{mail_addr}"] == "x@y"


def test_macros_for_a_suppressed_command_are_not_attached_elsewhere() -> None:
    request = NegotiationRequest(protocol=ProtocolFlag.NOHELO)
    conn = setup(through("connected"), request=request)()
    conn.receive_data(
        packet(b"D", b"H{tls_version}\x00TLSv1.3\x00") + encode_command(MailFrom("<a@b>"))
    )
    assert drain(conn) == [MailFrom("<a@b>")]
    assert conn.macros["{tls_version}"] == "TLSv1.3"


def test_stale_announcements_are_dropped() -> None:
    request = NegotiationRequest(protocol=ProtocolFlag.NOHELO)
    conn = setup(through("connected"), request=request)()
    conn.receive_data(
        packet(b"D", b"H{tls_version}\x00TLSv1.3\x00") + encode_command(MailFrom("<a@b>"))
    )
    drain(conn)
    conn.send(Reject())
    # a later HELO without its own macro packet must not inherit the old announcement
    assert feed(conn, Helo("again")) == [Helo("again")]
    assert conn.pending_reply == Helo("again")
    assert dict(conn.pending_reply.macros) == {}


def test_macro_before_negotiation_is_remote_error() -> None:
    conn = MilterConnection()
    conn.receive_data(packet(b"D", b"Cj\x00mx\x00"))
    with pytest.raises(RemoteProtocolError, match="macro"):
        conn.next_event()


# --- end of stream and limits -----------------------------------------------------


def test_clean_eof_gives_connection_closed_repeatedly() -> None:
    conn = setup(through("connected"))()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.next_event() == ConnectionClosed()
    assert conn.stage is Stage.CLOSED
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


def test_eof_inside_a_packet_is_remote_error() -> None:
    conn = setup(through("connected"))()
    conn.receive_data(encode_command(Helo("client"))[:-2])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_eof_while_reply_pending_closes() -> None:
    conn = setup(through("connected"))()
    feed(conn, Helo("h"))
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.pending_reply is None


def test_max_frame_size_is_enforced() -> None:
    conn = MilterConnection(max_frame_size=64)
    conn.receive_data((65).to_bytes(4, "big"))
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        conn.next_event()


def test_large_header_within_default_limit() -> None:
    conn = setup(through("data"))()
    big = Header("X-Big", "v" * 100_000)
    assert feed(conn, big) == [big]


def _command_classes(base: type[Command] = Command) -> list[type[Command]]:
    found: list[type[Command]] = []
    for kind in base.__subclasses__():
        found += [kind, *_command_classes(kind)]
    return [kind for kind in found if "CODE" in vars(kind)]


@pytest.mark.parametrize("kind", _command_classes(), ids=lambda k: k.__name__)
@pytest.mark.parametrize("protocol", [0, 0x1FFFFF, 0x1000 | 0x80, 0xFF000, 0x2AAAA, 0x15555])
def test_silent_codes_agree_with_expects_reply(kind: type[Command], protocol: int) -> None:
    """The session decides "reply due?" from a per-connection set of codes; it must say
    what `expects_reply` says for every command class under any protocol bits."""
    flags = ProtocolFlag(protocol)
    due = kind.EXPECTS_REPLY and kind.CODE not in silent_codes(flags)
    assert due == expects_reply(cast(Command, kind), flags)

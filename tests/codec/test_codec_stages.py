"""Stage matrix: every command in every stage, allowed or RemoteProtocolError."""

from __future__ import annotations

import pytest

from milter.codec import (
    Abort,
    BodyChunk,
    Command,
    Connect,
    Continue,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Family,
    Header,
    Helo,
    MailFrom,
    MilterConnection,
    NegotiationRequest,
    OptNeg,
    ProtocolFlag,
    Quit,
    QuitNewConnection,
    Rcpt,
    RemoteProtocolError,
    Stage,
    Unknown,
)
from milter.codec.mta import encode_command
from tests.codec.codec_helpers import POSTFIX_OFFER, drain, setup, through

SAMPLES: dict[str, Command] = {
    "optneg": POSTFIX_OFFER,
    "connect": Connect("h", Family.INET, 25, "192.0.2.1"),
    "helo": Helo("h"),
    "mail": MailFrom("<a@b>"),
    "rcpt": Rcpt("<c@d>"),
    "data": Data(),
    "header": Header("Subject", "x"),
    "eoh": EndOfHeaders(),
    "body": BodyChunk(b"x\r\n"),
    "eom": EndOfMessage(),
    "abort": Abort(),
    "quit": Quit(),
    "quit_nc": QuitNewConnection(),
    "unknown": Unknown("XFOO"),
}
ANYTIME = {"abort", "quit", "quit_nc"}

# stage reached through `through(name)` -> (expected Stage, commands allowed next)
MATRIX: dict[str, tuple[Stage, set[str]]] = {
    "negotiated": (Stage.CONNECT, {"connect", "unknown"} | ANYTIME),
    "connected": (Stage.CONNECTED, {"helo", "mail", "unknown"} | ANYTIME),
    "helo": (Stage.CONNECTED, {"helo", "mail", "unknown"} | ANYTIME),
    "mail": (Stage.MAIL, {"rcpt", "unknown"} | ANYTIME),
    "rcpt": (
        Stage.RCPT,
        {"rcpt", "data", "header", "eoh", "body", "eom", "unknown"} | ANYTIME,
    ),
    "data": (Stage.DATA, {"header", "eoh", "body", "eom"} | ANYTIME),
    "header": (Stage.HEADER, {"header", "eoh", "body", "eom"} | ANYTIME),
    "eoh": (Stage.EOH, {"body", "eom"} | ANYTIME),
    "body": (Stage.BODY, {"body", "eom"} | ANYTIME),
}
CELLS = [(stage, name) for stage in MATRIX for name in SAMPLES]


def _try(conn: MilterConnection, command: Command) -> bool:
    conn.receive_data(encode_command(command))
    try:
        return drain(conn) == [command]
    except RemoteProtocolError:
        assert conn.stage is Stage.ERROR
        return False


@pytest.mark.parametrize(("stage", "name"), CELLS)
def test_stage_matrix(stage: str, name: str) -> None:
    conn = setup(through(stage))()
    expected_stage, allowed = MATRIX[stage]
    assert conn.stage is expected_stage
    assert _try(conn, SAMPLES[name]) == (name in allowed)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fresh_connection_accepts_only_optneg_and_quit(name: str) -> None:
    assert _try(MilterConnection(), SAMPLES[name]) == (name in {"optneg", "quit"})


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_nothing_after_quit(name: str) -> None:
    conn = setup([*through("connected"), Quit()])()
    assert conn.stage is Stage.CLOSED
    assert not _try(conn, SAMPLES[name])


def test_stages_follow_a_transaction() -> None:
    conn = setup()()
    seen = []
    for command in [*through("body"), EndOfMessage()]:
        conn.receive_data(encode_command(command))
        drain(conn)
        seen.append(conn.stage)
        if conn.pending_reply is not None:
            conn.send(Continue())
    assert seen == [
        Stage.CONNECTED,
        Stage.CONNECTED,
        Stage.MAIL,
        Stage.RCPT,
        Stage.DATA,
        Stage.HEADER,
        Stage.EOH,
        Stage.BODY,
        Stage.EOM,
    ]
    assert conn.stage is Stage.CONNECTED


@pytest.mark.parametrize(
    ("protocol", "stage", "name"),
    [
        (ProtocolFlag.NOCONNECT, "negotiated", "helo"),
        (ProtocolFlag.NOCONNECT, "negotiated", "mail"),
        (ProtocolFlag.NOMAIL, "connected", "rcpt"),
        (ProtocolFlag.NOMAIL | ProtocolFlag.NORCPT, "connected", "data"),
        (ProtocolFlag.NOMAIL | ProtocolFlag.NORCPT, "connected", "eom"),
        (ProtocolFlag.NORCPT, "mail", "data"),
        (ProtocolFlag.NORCPT, "mail", "body"),
    ],
)
def test_no_flags_let_the_mta_skip_commands(protocol: ProtocolFlag, stage: str, name: str) -> None:
    request = NegotiationRequest(protocol=protocol)
    skipped = {"negotiated": (), "connected": through("connected"), "mail": through("mail")}
    conn = setup(skipped[stage], request=request)()
    assert _try(conn, SAMPLES[name])
    # ...and without the flag the same skip is an error
    assert not _try(setup(skipped[stage])(), SAMPLES[name])


def test_quit_nc_starts_a_new_connection() -> None:
    conn = setup([*through("mail"), QuitNewConnection()])()
    assert conn.stage is Stage.CONNECT
    assert _try(conn, SAMPLES["connect"])
    assert conn.stage is Stage.CONNECTED


def test_abort_returns_to_connected_and_repeats() -> None:
    conn = setup(through("header"))()
    for _ in range(3):
        assert _try(conn, Abort())
        assert conn.stage is Stage.CONNECTED
    assert _try(conn, SAMPLES["mail"])


def test_abort_before_connect_keeps_stage() -> None:
    conn = setup()()
    assert _try(conn, Abort())
    assert conn.stage is Stage.CONNECT


def test_optneg_twice_is_an_error() -> None:
    conn = setup()()
    assert not _try(conn, OptNeg(6, POSTFIX_OFFER.actions, POSTFIX_OFFER.protocol))


def test_a_refusal_is_not_remembered_for_an_other_protocol() -> None:
    """Transitions are cached per (stage, class, protocol): HELO first is refused without
    NOCONNECT and allowed with it, in either order on the same process."""
    plain = setup()()
    assert not _try(plain, Helo("h"))
    skipping = setup(request=NegotiationRequest(protocol=ProtocolFlag.NOCONNECT))()
    assert _try(skipping, Helo("h"))
    assert skipping.stage is Stage.CONNECTED
    again = setup()()
    assert not _try(again, Helo("h"))
    assert not _try(setup()(), Helo("h"))


def test_a_refusal_is_raised_every_time() -> None:
    for _ in range(3):
        conn = setup(through("mail"))()
        assert not _try(conn, Data())

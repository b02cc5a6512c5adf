"""Option negotiation: what we ask for against what the MTA offers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milter.codec import (
    DEFAULT_ACTIONS,
    ActionFlag,
    ChangeHeader,
    Continue,
    EndOfMessage,
    LocalProtocolError,
    MacroStage,
    MilterConnection,
    NegotiationRequest,
    OptNeg,
    OptNegReply,
    ProtocolFlag,
    RemoteProtocolError,
    Stage,
    negotiate,
    protocol_mask,
)
from milter.codec.mta import encode_command
from tests.codec.codec_helpers import ENVELOPE, POSTFIX_OFFER, drain, packet, play

NR_HDR_LEADSPC = ProtocolFlag.NR_HDR | ProtocolFlag.HDR_LEADSPC


def test_postfix_offer_default_request() -> None:
    reply = negotiate(POSTFIX_OFFER)
    assert reply == OptNegReply(6, ActionFlag(0x33), ProtocolFlag.NONE)
    assert DEFAULT_ACTIONS == 0x33


def test_postfix_offer_with_nr_hdr_and_macro_list() -> None:
    request = NegotiationRequest(
        protocol=NR_HDR_LEADSPC,
        macros={MacroStage.EOM: ("i", "{auth_authen}", "{client_addr}", "{daemon_port}")},
    )
    reply = negotiate(POSTFIX_OFFER, request)
    assert reply.version == 6
    assert reply.actions == ActionFlag(0x133)
    assert reply.protocol == NR_HDR_LEADSPC
    assert reply.macros == {
        MacroStage.EOM: ("i", "{auth_authen}", "{client_addr}", "{daemon_port}")
    }


def test_mta_offering_fewer_actions() -> None:
    offer = OptNeg(6, ActionFlag.ADDHDRS | ActionFlag.CHGBODY, ProtocolFlag(0x1FFFFF))
    reply = negotiate(offer)
    assert reply.actions == ActionFlag.ADDHDRS | ActionFlag.CHGBODY


def test_macro_lists_dropped_without_setsymlist() -> None:
    offer = OptNeg(6, ActionFlag(0xFF), ProtocolFlag(0x1FFFFF))
    request = NegotiationRequest(actions=ActionFlag(0x133), macros={MacroStage.EOM: ("i",)})
    reply = negotiate(offer, request)
    assert reply.macros == {}
    assert ActionFlag.SETSYMLIST not in reply.actions
    assert reply.actions == ActionFlag(0x33)


def test_protocol_bits_never_exceed_offer() -> None:
    offer = OptNeg(6, ActionFlag(0x1FF), ProtocolFlag.NOHELO | ProtocolFlag.NR_HDR)
    request = NegotiationRequest(
        protocol=ProtocolFlag.NOHELO | ProtocolFlag.NR_BODY | ProtocolFlag.NR_HDR
    )
    assert negotiate(offer, request).protocol == ProtocolFlag.NOHELO | ProtocolFlag.NR_HDR


@pytest.mark.parametrize(
    ("version", "offered", "expected"),
    [
        (2, ProtocolFlag(0x7F), ProtocolFlag.NOHELO),
        (3, ProtocolFlag(0x17F), ProtocolFlag.NOHELO | ProtocolFlag.NOUNKNOWN),
        (
            4,
            ProtocolFlag(0x37F),
            ProtocolFlag.NOHELO | ProtocolFlag.NOUNKNOWN | ProtocolFlag.NODATA,
        ),
        # an old MTA that sets unknown high bits still only gets bits of its version
        (2, ProtocolFlag(0x1FFFFF), ProtocolFlag.NOHELO),
        (6, ProtocolFlag(0x1FFFFF), ProtocolFlag(0x82302)),
    ],
)
def test_older_versions_downgrade(
    version: int, offered: ProtocolFlag, expected: ProtocolFlag
) -> None:
    wanted = (
        ProtocolFlag.NOHELO
        | ProtocolFlag.NOUNKNOWN
        | ProtocolFlag.NODATA
        | ProtocolFlag.NR_HELO
        | ProtocolFlag.NR_BODY
    )
    reply = negotiate(
        OptNeg(version, ActionFlag(0x3F), offered), NegotiationRequest(protocol=wanted)
    )
    assert reply.version == version
    assert reply.protocol == expected
    assert reply.protocol & ~protocol_mask(version) == 0


def test_newer_mta_version_gets_our_version() -> None:
    assert negotiate(OptNeg(7, ActionFlag(0x1FF), ProtocolFlag(0x1FFFFF))).version == 6


def test_request_can_pin_a_lower_version() -> None:
    assert negotiate(POSTFIX_OFFER, NegotiationRequest(version=4)).version == 4


@pytest.mark.parametrize("version", [0, 1])
def test_version_below_two_is_remote_error(version: int) -> None:
    conn = MilterConnection()
    conn.receive_data(
        packet(b"O", version.to_bytes(4, "big") + b"\x00\x00\x01\xff\x00\x1f\xff\xff")
    )
    with pytest.raises(RemoteProtocolError, match="version"):
        conn.next_event()
    assert conn.stage is Stage.ERROR


def test_v2_session_still_works_without_data_or_eoh() -> None:
    offer = OptNeg(2, ActionFlag(0x3F), ProtocolFlag(0x7F))
    conn = MilterConnection()
    events = play(conn, [offer, *ENVELOPE[:4], EndOfMessage()])
    assert conn.negotiated is not None
    assert conn.negotiated.version == 2
    assert events[-1] == EndOfMessage()
    assert conn.stage is Stage.CONNECTED


def test_session_refuses_bits_not_offered() -> None:
    offer = OptNeg(6, ActionFlag.ADDHDRS, ProtocolFlag.NR_HDR)
    conn = MilterConnection()
    conn.receive_data(encode_command(offer))
    assert drain(conn) == [offer]
    for bad in (
        OptNegReply(6, ActionFlag.ADDHDRS | ActionFlag.QUARANTINE, ProtocolFlag.NONE),
        OptNegReply(6, ActionFlag.ADDHDRS, ProtocolFlag.NR_BODY),
    ):
        with pytest.raises(LocalProtocolError, match="did not offer"):
            conn.send(bad)
    assert conn.stage is Stage.NEGOTIATE
    conn.send(OptNegReply(6, ActionFlag.ADDHDRS, ProtocolFlag.NR_HDR))
    assert conn.stage is Stage.CONNECT


def test_session_refuses_higher_version_than_offered() -> None:
    conn = MilterConnection()
    conn.receive_data(encode_command(OptNeg(4, ActionFlag(0x3F), ProtocolFlag(0x37F))))
    drain(conn)
    with pytest.raises(LocalProtocolError, match="version"):
        conn.send(OptNegReply(6, ActionFlag.NONE, ProtocolFlag.NONE))


def test_optneg_must_be_answered_with_optneg_reply() -> None:
    conn = MilterConnection()
    conn.receive_data(encode_command(POSTFIX_OFFER))
    drain(conn)
    with pytest.raises(LocalProtocolError, match="OptNegReply"):
        conn.send(Continue())


def test_actions_not_granted_make_modifications_local_errors() -> None:
    offer = OptNeg(6, ActionFlag.ADDHDRS | ActionFlag.QUARANTINE, ProtocolFlag(0x1FFFFF))
    conn = MilterConnection()
    play(conn, [offer, *ENVELOPE])
    conn.receive_data(encode_command(EndOfMessage()))
    assert drain(conn) == [EndOfMessage()]
    with pytest.raises(LocalProtocolError, match="CHGHDRS"):
        conn.send(ChangeHeader(1, "Subject", "x"))
    assert conn.actions == ActionFlag.ADDHDRS | ActionFlag.QUARANTINE


@given(st.integers(0, 0x1FF), st.integers(0, 0x1FF))
def test_missing_actions_is_needed_and_not_granted(needed: int, granted: int) -> None:
    from milter.codec import missing_actions

    for _ in range(2):  # the second answer comes from the cache
        missing = missing_actions(ActionFlag(needed), ActionFlag(granted))
        assert missing == ActionFlag(needed) & ~ActionFlag(granted)
        assert isinstance(missing, ActionFlag)

"""Message assembly from milter events, and the plan turned into milter replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from milter.codec import (
    Accept,
    ActionFlag,
    AddHeader,
    ChangeHeader,
    Discard,
    InsertHeader,
    ProtocolFlag,
    Quarantine,
    ReplaceBodyChunk,
    ReplyCode,
)
from milter.frontends.milter.assemble import AssemblyLimits, MessageAssembler
from milter.frontends.milter.replies import WireOptions, outcome_replies
from milter.frontends.service import Action, MessageRequest, Outcome
from milter.model.envelope import Envelope
from milter.model.plan import ActionPlan, HeaderEdit, HeaderOp, QuarantineMode, SmtpReply
from milter.model.verdict import Disposition
from tests.support.milter_client import split_message

RAW = (
    b"From: A <a@example.org>\r\nSubject: two\r\n lines\r\nX-Tight:no-space\r\n"
    b"Received: from x\r\n\tby y\r\n\r\nbody line\r\n\xe9\xff 8-bit\r\n"
)


def _assemble(raw: bytes, leadspc: bool, limits: AssemblyLimits | None = None) -> MessageAssembler:
    assembler = MessageAssembler(limits or AssemblyLimits(), leading_space_kept=leadspc)
    headers, body = split_message(raw)
    for name, value in headers:
        assembler.add_header(name, value if leadspc else value.removeprefix(" "))
    assembler.add_body(body[:10])
    assembler.add_body(body[10:])
    return assembler


def test_leadspc_rebuilds_the_message_byte_for_byte() -> None:
    assert _assemble(RAW, leadspc=True).finish().to_bytes() == RAW


def test_without_leadspc_only_the_separator_space_is_normalised() -> None:
    rebuilt = _assemble(RAW, leadspc=False).finish().to_bytes()
    assert rebuilt == RAW.replace(b"X-Tight:no-space", b"X-Tight: no-space")


def test_body_over_the_limit_keeps_its_first_bytes_for_the_scan() -> None:
    """#17: past max_message_bytes the first bytes are kept (scanned), the rest counted."""
    limits = AssemblyLimits(max_message_bytes=len(RAW) - 5)
    assembler = _assemble(RAW, leadspc=True, limits=limits)
    message = assembler.finish()
    assert message.to_bytes() == RAW[: len(RAW) - 5]
    assert message.truncated
    assert message.received == len(RAW)
    assert assembler.header_names == ["From", "Subject", "X-Tight", "Received"]


def test_many_headers_are_kept_for_the_scan_not_skipped() -> None:
    """#17: a header flood is no reason to accept unscanned; the engine records the limit."""
    assembler = MessageAssembler(AssemblyLimits(max_headers=10), leading_space_kept=True)
    for i in range(11):
        assembler.add_header(f"X-H{i}", " v")
    assert assembler.finish().to_bytes().count(b"X-H") == 11


WIRE = WireOptions(ActionFlag(0x33), leading_space=True)
REQUEST = MessageRequest(b"", Envelope(), 0)


def plan_replies(
    plan: ActionPlan, wire: WireOptions, action: Action = Action.DELIVER
) -> tuple[list[object], list[str]]:
    reply = plan.smtp_reply
    replies, skipped = outcome_replies(Outcome(action, plan, REQUEST, reply=reply), wire)
    return list(replies), skipped


def test_plan_replies_order_index_shift_and_leading_space() -> None:
    plan = ActionPlan(
        Disposition.TAG,
        header_edits=(
            HeaderEdit(HeaderOp.INSERT, "Authentication-Results", "tocsin; spf=pass", 0),
            HeaderEdit(HeaderOp.DELETE, "X-Tocsin-Verdict", "", 2),
            HeaderEdit(HeaderOp.CHANGE, "Subject", "[SUSPECT] hi\r\n there", 1),
            HeaderEdit(HeaderOp.ADD, "X-Tocsin-Verdict", "v=1"),
        ),
        new_body=b"x" * 70000,
        quarantine_mode=QuarantineMode.HOLD,
        hold_reason="impersonates\tameli",
    )
    replies, skipped = plan_replies(plan, WIRE, Action.HOLD)
    assert skipped == []
    assert replies[0] == InsertHeader(1, "Authentication-Results", " tocsin; spf=pass")
    assert replies[1] == ChangeHeader(2, "X-Tocsin-Verdict", "")
    assert replies[2] == ChangeHeader(1, "Subject", " [SUSPECT] hi\n there")
    assert replies[3] == AddHeader("X-Tocsin-Verdict", " v=1")
    chunks = [r for r in replies if isinstance(r, ReplaceBodyChunk)]
    assert [len(c.data) for c in chunks] == [65535, 70000 - 65535]
    assert replies[-2] == Quarantine("impersonates ameli")
    assert replies[-1] == Accept()


def test_without_leadspc_or_hidden_received_values_and_indexes_pass_unchanged() -> None:
    wire = WireOptions(ActionFlag(0x33), leading_space=False, hides_received=False)
    plan = ActionPlan(Disposition.ACCEPT, (HeaderEdit(HeaderOp.INSERT, "X-A", "v", 0),))
    replies, _ = plan_replies(plan, wire)
    assert replies == [InsertHeader(0, "X-A", "v"), Accept()]


def test_edits_the_mta_did_not_grant_are_reported_not_sent() -> None:
    wire = WireOptions(ActionFlag.ADDHDRS, leading_space=True)
    plan = ActionPlan(
        Disposition.QUARANTINE,
        (HeaderEdit(HeaderOp.DELETE, "X-A", "", 1), HeaderEdit(HeaderOp.ADD, "X-B", "v")),
        new_body=b"new",
        hold_reason="held",
    )
    replies, skipped = plan_replies(plan, wire, Action.HOLD)
    assert replies == [AddHeader("X-B", " v"), Accept()]
    assert skipped == ["delete X-A", "body replacement", "quarantine (hold)"]


def test_reject_tempfail_and_discard() -> None:
    reject = ActionPlan(Disposition.REJECT, smtp_reply=SmtpReply(550, "5.7.1", "No 100% fake"))
    assert plan_replies(reject, WIRE, Action.REJECT)[0] == [ReplyCode(550, "5.7.1 No 100% fake")]
    assert ReplyCode(550, "5.7.1 No 100% fake").encode().endswith(b"No 100%% fake\0")
    plan = ActionPlan(Disposition.QUARANTINE, (HeaderEdit(HeaderOp.ADD, "X-B", "v"),))
    assert plan_replies(plan, WIRE, Action.QUARANTINE)[0] == [Discard()]


def test_a_failed_outcome_tempfails_with_the_plans_failure_reply() -> None:
    plan = ActionPlan(
        Disposition.QUARANTINE,
        quarantine_mode=QuarantineMode.STORE,
        failure_reply=SmtpReply(451, "4.7.1", "Reessayez plus tard / try again later"),
    )
    outcome = Outcome(Action.QUARANTINE, plan, REQUEST, quarantine_id="x").failed("store down")
    assert outcome.action is Action.TEMPFAIL
    assert outcome.quarantine_id is None
    replies, _ = outcome_replies(outcome, WIRE)
    assert replies == [ReplyCode(451, "4.7.1 Reessayez plus tard / try again later")]


def test_a_plan_cannot_carry_a_permanent_failure_reply() -> None:
    with pytest.raises(ValueError, match="tempfail"):
        ActionPlan(Disposition.ACCEPT, failure_reply=SmtpReply(550, "5.0.0", "lost"))
    with pytest.raises(ValueError, match="needs its SMTP reply"):
        ActionPlan(Disposition.REJECT)


@pytest.mark.parametrize("hides", [True, False])
@pytest.mark.parametrize(
    "protocol", [ProtocolFlag.NONE, ProtocolFlag.HDR_LEADSPC | ProtocolFlag.NR_HDR]
)
@pytest.mark.parametrize("actions", [ActionFlag.ADDHDRS, ActionFlag(0x1FF)])
def test_wire_options_follow_what_was_negotiated(
    actions: ActionFlag, protocol: ProtocolFlag, hides: bool
) -> None:
    from milter.frontends.milter.replies import wire_options

    expected = WireOptions(actions, ProtocolFlag.HDR_LEADSPC in protocol, hides)
    assert wire_options(actions, protocol, hides) == expected


def _reference(raw: bytes, limits: AssemblyLimits) -> tuple[bytes, int, int, bool, int | None]:
    """What the writer kept when every header line was written on its own (before the
    lines were batched): the bytes, their size, what was received, spooled, header end."""
    writer = limits.spool.writer(limits.max_message_bytes)
    headers, body = split_message(raw)
    for name, value in headers:
        line = (name + ":" + value).encode("utf-8", "surrogateescape")
        writer.write(line.replace(b"\n", b"\r\n") + b"\r\n")
    writer.write(b"\r\n")
    writer.write(body[:10])
    writer.write(body[10:])
    message = writer.finish()
    try:
        return (
            message.to_bytes(),
            message.size,
            message.received,
            message.spooled,
            writer.header_end,
        )
    finally:
        message.close()


@pytest.mark.parametrize("max_bytes", [3, 30, 41, 60, len(RAW) - 5, 50 * 1024 * 1024])
@pytest.mark.parametrize("threshold", [20, 2 * 1024 * 1024])
def test_header_lines_batched_keep_what_the_writer_kept(
    max_bytes: int, threshold: int, tmp_path: Path
) -> None:
    from milter.mime.spool import SpoolConfig

    spool = SpoolConfig(directory=tmp_path, threshold_bytes=threshold)
    limits = AssemblyLimits(max_message_bytes=max_bytes, spool=spool)
    raw = RAW.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    expected = _reference(raw, limits)
    assembler = _assemble(raw, leadspc=True, limits=limits)
    writer = assembler._writer
    assert assembler.size == len(raw)
    message = assembler.finish()
    try:
        got = (message.to_bytes(), message.size, message.received, message.spooled)
        assert got == expected[:4]
        assert writer is not None
        assert writer.header_end == expected[4]
    finally:
        message.close()


def test_a_long_header_block_reaches_the_writer_before_its_end(tmp_path: Path) -> None:
    from milter.frontends.milter.assemble import HEADER_BATCH_BYTES

    assembler = MessageAssembler(AssemblyLimits(), leading_space_kept=True)
    value = " " + "x" * 1000
    count = HEADER_BATCH_BYTES // 1000 + 2
    for i in range(count):
        assembler.add_header(f"X-H{i}", value)
    writer = assembler._writer
    assert writer is not None
    assert 0 < writer.received < assembler.size
    assert assembler.finish().to_bytes().count(b"X-H") == count

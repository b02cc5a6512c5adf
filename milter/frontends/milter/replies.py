"""Turn the service's Outcome into milter replies, in the order Postfix accepts.

Pure: no I/O. Order: header edits in plan order, then the body replacement as
contiguous chunks (Postfix refuses REPLBODY mixed with other edits), then the
quarantine (hold) request, then exactly one final reply.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from milter.codec import (
    Accept,
    ActionFlag,
    AddHeader,
    ChangeHeader,
    Discard,
    InsertHeader,
    ProtocolFlag,
    Quarantine,
    Reply,
    ReplyCode,
    TempFail,
    missing_actions,
    replace_body,
)
from milter.frontends.service import Action, Outcome
from milter.model.plan import HeaderEdit, HeaderOp, SmtpReply

MAX_QUARANTINE_REASON = 100  # Postfix truncates the reason to 100 characters


@dataclass(frozen=True, slots=True)
class WireOptions:
    """What was negotiated with this MTA, as far as replies are concerned."""

    actions: ActionFlag
    leading_space: bool  # HDR_LEADSPC: we supply the space after the colon
    hides_received: bool = True  # INSHEADER indexes count the MTA's hidden Received


@functools.lru_cache(maxsize=64)
def wire_options(actions: ActionFlag, protocol: ProtocolFlag, hides_received: bool) -> WireOptions:
    """The `WireOptions` of a connection that negotiated ``actions`` and ``protocol``: the
    same for every connection of an MTA, so made once (it is immutable)."""
    return WireOptions(actions, ProtocolFlag.HDR_LEADSPC in protocol, hides_received)


def outcome_replies(outcome: Outcome, wire: WireOptions) -> tuple[list[Reply], list[str]]:
    """The replies for ``outcome`` and a list of edits the MTA did not allow us (to log)."""
    skipped: list[str] = []
    if outcome.action in (Action.REJECT, Action.TEMPFAIL):
        return [final_reply(outcome.action, outcome.reply)], skipped
    if outcome.action is Action.QUARANTINE:
        return [Discard()], skipped  # stored durably in Tocsin's quarantine first
    plan = outcome.plan
    replies: list[Reply] = []
    for edit in plan.header_edits:
        reply = header_reply(edit, wire)
        if missing_actions(reply.REQUIRES, wire.actions):
            skipped.append(f"{edit.op} {edit.name}")
        else:
            replies.append(reply)
    if plan.new_body is not None:
        if ActionFlag.CHGBODY in wire.actions:
            replies.extend(replace_body(plan.new_body))
        else:
            skipped.append("body replacement")
    if outcome.action is Action.HOLD:
        if ActionFlag.QUARANTINE in wire.actions:
            replies.append(Quarantine(_reason(plan.hold_reason)))
        else:
            skipped.append("quarantine (hold)")
    replies.append(Accept())
    return replies, skipped


def header_reply(edit: HeaderEdit, wire: WireOptions) -> Reply:
    """One header edit as its milter reply."""
    value = _wire_value(edit.value, wire.leading_space)
    if edit.op is HeaderOp.ADD:
        return AddHeader(edit.name, value)
    if edit.op is HeaderOp.INSERT:
        index = edit.index + 1 if wire.hides_received else edit.index
        return InsertHeader(index, edit.name, value)
    if edit.op is HeaderOp.CHANGE:
        return ChangeHeader(max(edit.index, 1), edit.name, value)
    return ChangeHeader(max(edit.index, 1), edit.name, "")


def final_reply(action: Action, reply: SmtpReply | None) -> Reply:
    """REJECT/TEMPFAIL as a validated REPLYCODE (or the MTA's generic reply)."""
    if reply is not None:
        return ReplyCode(reply.code, f"{reply.enhanced} {reply.text}")
    if action is Action.TEMPFAIL:
        return TempFail()
    return ReplyCode(550, "5.7.1 Message refused")


def _wire_value(value: str, leading_space: bool) -> str:
    # Folded values go to the MTA with bare LF line breaks (milter convention).
    value = value.replace("\r\n", "\n").replace("\r", "")
    return " " + value if leading_space and not value.startswith((" ", "\t")) else value


def _reason(text: str) -> str:
    printable = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return (printable.strip() or "held by Tocsin")[:MAX_QUARANTINE_REASON]

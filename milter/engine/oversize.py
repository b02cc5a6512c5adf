"""The verdict and plan for a message past ``max_message_bytes`` that the policy says not
to scan (``limits.oversize``: tempfail, reject, or the legacy accept). The default, "scan",
never comes here: the engine scans the first ``max_message_bytes`` (milter.engine.pipeline)."""

from __future__ import annotations

from collections.abc import Sequence

from milter.actions.headers import remove_all, verdict_header_value
from milter.engine.plan import completion
from milter.model.plan import ActionPlan, HeaderEdit, HeaderOp, SmtpReply
from milter.model.verdict import Disposition, Reason, Verdict
from milter.policy.model import Policy

RULE = "oversize"


def oversize_verdict(policy: Policy, why: str) -> Verdict:
    """What the policy says about a message past the size limit it does not scan, and why."""
    disposition = Disposition(policy.document.limits.oversize)
    reason = Reason(RULE, disposition, f"not scanned: {why}")
    return Verdict(disposition, None, 0.0, (), (reason,))


def oversize_plan(
    verdict: Verdict, policy: Policy, rcpts: Sequence[str], header_names: Sequence[str]
) -> ActionPlan:
    """Accept with a verdict header saying it was not scanned, or reject/tempfail.

    ``header_names`` are the names of the headers received, so a verdict header forged
    upstream is removed even though the message itself was not kept.
    """
    actions = policy.effective(rcpts).actions
    done = completion(verdict, actions)
    if verdict.disposition is Disposition.REJECT:
        return ActionPlan(verdict.disposition, smtp_reply=SmtpReply(552, "5.3.4", _TOO_BIG), **done)
    if verdict.disposition is Disposition.TEMPFAIL:
        return ActionPlan(verdict.disposition, smtp_reply=SmtpReply(452, "4.3.4", _TOO_BIG), **done)
    edits = [
        *remove_all([(name, "") for name in header_names], actions.verdict_header),
        HeaderEdit(HeaderOp.ADD, actions.verdict_header, verdict_header_value(verdict)),
    ]
    return ActionPlan(verdict.disposition, header_edits=tuple(edits), **done)


_TOO_BIG = "Message too large to be checked"

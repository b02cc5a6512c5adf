"""plan(verdict, message, policy) → ActionPlan: the edits as data, applied by front-ends."""

from __future__ import annotations

from milter.actions.headers import remove_all, subject_tag_edit, verdict_header_value
from milter.mime.parse import MimeView
from milter.model.envelope import Envelope
from milter.model.plan import ActionPlan, HeaderEdit, HeaderOp, SmtpReply
from milter.model.verdict import Disposition, Verdict
from milter.policy.model import Policy

SUBJECT_TAG = "subject_tag"


def plan(
    verdict: Verdict, mime: MimeView, policy: Policy, envelope: Envelope | None = None
) -> ActionPlan:
    """The edits and reply for ``verdict``. Pure: nothing is applied here."""
    actions = policy.effective(envelope.rcpts if envelope else ()).actions
    if verdict.disposition in (Disposition.REJECT, Disposition.TEMPFAIL):
        text = (
            actions.replies.reject
            if verdict.disposition is Disposition.REJECT
            else (actions.replies.tempfail)
        )
        return ActionPlan(verdict.disposition, smtp_reply=_reply(text))
    edits: list[HeaderEdit] = remove_all(mime.headers, actions.verdict_header)
    edits.append(HeaderEdit(HeaderOp.ADD, actions.verdict_header, verdict_header_value(verdict)))
    if SUBJECT_TAG in verdict.actions:
        tag = subject_tag_edit(mime.headers, actions.subject_tag)
        if tag is not None:
            edits.append(tag)
    return ActionPlan(
        verdict.disposition,
        header_edits=tuple(edits),
        quarantine=verdict.disposition is Disposition.QUARANTINE,
    )


def _reply(text: str) -> SmtpReply:
    code, enhanced, message = text.split(" ", 2)
    return SmtpReply(int(code), enhanced, message)

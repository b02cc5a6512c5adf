"""plan(verdict, message, policy) → ActionPlan: the edits as data, applied by front-ends."""

from __future__ import annotations

from milter.actions.banner import add_banner
from milter.actions.headers import remove_all, subject_tag_edit, verdict_header_value
from milter.auth.authres import format_authres, sort_authres
from milter.mime.parse import MimeView
from milter.model.envelope import Envelope
from milter.model.findings import Severity
from milter.model.plan import ActionPlan, HeaderEdit, HeaderOp, SmtpReply
from milter.model.verdict import Disposition, Verdict
from milter.policy.model import Policy

SUBJECT_TAG = "subject_tag"
BANNER = "banner"
AUTHRES = "Authentication-Results"


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
    edits: list[HeaderEdit] = authres_edits(verdict, mime, policy)
    edits += remove_all(mime.headers, actions.verdict_header)
    edits.append(HeaderEdit(HeaderOp.ADD, actions.verdict_header, verdict_header_value(verdict)))
    if SUBJECT_TAG in verdict.actions:
        tag = subject_tag_edit(mime.headers, actions.subject_tag)
        if tag is not None:
            edits.append(tag)
    return ActionPlan(
        verdict.disposition,
        header_edits=tuple(edits),
        new_body=banner_body(verdict, mime, policy) if BANNER in verdict.actions else None,
        quarantine=verdict.disposition is Disposition.QUARANTINE,
    )


def banner_body(verdict: Verdict, mime: MimeView, policy: Policy) -> bytes | None:
    """The body with the warning banner, or None (signed mail, already bannered)."""
    doc = policy.document
    texts = [(doc.banners[lang], lang) for lang in doc.actions.banner_languages]
    brand = doc.brands.get(verdict.brand) if verdict.brand else None
    reasons = [f.text for f in verdict.findings if f.severity >= Severity.MEDIUM][:5]
    advice = brand.advice.model_dump() if brand and brand.advice else {}
    return add_banner(mime.raw, texts, brand.name if brand else None, reasons, advice)


def authres_edits(verdict: Verdict, mime: MimeView, policy: Policy) -> list[HeaderEdit]:
    """Delete Authentication-Results forging our authserv-id (RFC 8601 §5), then add ours
    at the top when there are results."""
    settings = policy.document.authentication
    existing = mime.header_values(AUTHRES)
    upstream = sort_authres(existing, settings.authserv_id, settings.trusted_authserv_ids)
    edits = [HeaderEdit(HeaderOp.DELETE, AUTHRES, "", i + 1) for i in upstream.removal_order()]
    if verdict.auth:
        value = format_authres(settings.authserv_id, verdict.auth)
        edits.append(HeaderEdit(HeaderOp.INSERT, AUTHRES, value, 0))
    return edits


def _reply(text: str) -> SmtpReply:
    code, enhanced, message = text.split(" ", 2)
    return SmtpReply(int(code), enhanced, message)

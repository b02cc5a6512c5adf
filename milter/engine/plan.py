"""plan(verdict, message, policy) → ActionPlan: the edits as data, applied by front-ends."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from milter.actions.banner import Banner, render_blocks
from milter.actions.compose import edit_body
from milter.actions.defang import LinkRewrite
from milter.actions.headers import remove_all, subject_tag_edit, verdict_header_value
from milter.actions.redirect import RedirectSigner
from milter.actions.targets import LinkTargets, targets_from_findings
from milter.auth.authres import format_authres, sort_authres
from milter.engine.banner_text import banner_blocks, failed_to_prove
from milter.mime.parse import MimeView
from milter.model.auth import AuthStatus
from milter.model.codes import Code
from milter.model.envelope import Envelope
from milter.model.plan import ActionPlan, HeaderEdit, HeaderOp, QuarantineMode, SmtpReply
from milter.model.verdict import Disposition, Verdict
from milter.policy.model import Policy
from milter.policy.schema import Actions

log = logging.getLogger(__name__)

SUBJECT_TAG = "subject_tag"
BANNER = "banner"
LINK_ACTIONS = frozenset({"defang_links", "rewrite_links"})  # both follow actions.link_rewrite
AUTHRES = "Authentication-Results"


def plan(
    verdict: Verdict, mime: MimeView, policy: Policy, envelope: Envelope | None = None
) -> ActionPlan:
    """The edits and reply for ``verdict``. Pure: nothing is applied here."""
    actions = policy.effective(envelope.rcpts if envelope else ()).actions
    if verdict.monitored:
        return monitor_plan(verdict, mime, actions)
    if verdict.disposition in (Disposition.REJECT, Disposition.TEMPFAIL):
        text = (
            actions.replies.reject
            if verdict.disposition is Disposition.REJECT
            else (actions.replies.tempfail)
        )
        return ActionPlan(
            verdict.disposition, smtp_reply=_reply(text), **completion(verdict, actions)
        )
    untouched = brand_proven(verdict, policy)
    rcpts = envelope.rcpts if envelope else ()
    new_body = None if untouched else body_edit(verdict, mime, policy, actions, rcpts)
    edits: list[HeaderEdit] = authres_edits(verdict, mime, policy)
    edits += remove_all(mime.headers, actions.verdict_header)
    edits.append(HeaderEdit(HeaderOp.ADD, actions.verdict_header, verdict_header_value(verdict)))
    if SUBJECT_TAG in verdict.actions and not untouched:
        tag = subject_tag_edit(mime.headers, actions.subject_tag)
        if tag is not None:
            edits.append(tag)
    return ActionPlan(
        verdict.disposition,
        header_edits=tuple(edits),
        new_body=new_body,
        **completion(verdict, actions),
    )


def completion(verdict: Verdict, actions: Actions) -> dict[str, Any]:
    """What a front-end needs besides the edits: quarantine mode, hold reason and the
    reply if carrying out the plan fails (the policy's tempfail reply)."""
    quarantined = verdict.disposition is Disposition.QUARANTINE
    return {
        "quarantine_mode": QuarantineMode(actions.quarantine_store) if quarantined else None,
        "hold_reason": verdict.reasons[0].text if verdict.reasons else "held by Tocsin",
        "failure_reply": _reply(actions.replies.tempfail),
    }


def monitor_plan(verdict: Verdict, mime: MimeView, actions: Actions) -> ActionPlan:
    """Monitor mode: the message goes through unchanged but for the verdict header,
    which carries ``would=…`` (a forged copy from upstream is removed first)."""
    edits = remove_all(mime.headers, actions.verdict_header)
    edits.append(HeaderEdit(HeaderOp.ADD, actions.verdict_header, verdict_header_value(verdict)))
    return ActionPlan(Disposition.ACCEPT, header_edits=tuple(edits))


def body_edit(
    verdict: Verdict, mime: MimeView, policy: Policy, actions: Actions, rcpts: Sequence[str] = ()
) -> bytes | None:
    """The body with suspicious links neutralised and the banner on top, as the verdict's
    actions ask; None when nothing changes (signed or encrypted mail, already done).
    ``rcpts``: the envelope recipients redirect-mode links are bound to."""
    wanted = LINK_ACTIONS & verdict.actions
    if not wanted and BANNER not in verdict.actions:
        return None  # what edit_body answers without a banner or links: nothing read
    targets = targets_from_findings(verdict.findings)
    if actions.unproven_brand_links == "all" and failed_to_prove(verdict):
        targets = targets.with_every_link()  # a lure's "harmless" tracker leads to it too
    links = link_rewrite(targets, actions, verdict, rcpts) if wanted else None
    banner = banner_for(verdict, policy, actions, targets) if BANNER in verdict.actions else None
    if (banner or links) and not mime.source.editable:
        # cut at max_message_bytes: the rest of the body never reached us, so it cannot be
        # rebuilt; the verdict header and subject tag still say what Tocsin found
        log.info("body not rewritten: only the first bytes of %d were kept", mime.source.received)
        return None
    return edit_body(mime.raw, banner=banner, links=links)


def link_rewrite(
    targets: LinkTargets, actions: Actions, verdict: Verdict, rcpts: Sequence[str] = ()
) -> LinkRewrite | None:
    """How to neutralise ``targets`` under ``actions.link_rewrite`` (defang, or signed
    links to the warning page that expire and name ``rcpts``)."""
    if not targets:
        return None
    key = actions.redirect_key
    if actions.link_rewrite == "redirect" and actions.redirect_url and key:
        base = actions.redirect_url
        lifetime = timedelta(days=actions.redirect_lifetime_days)
        signer = RedirectSigner.for_message(base, key, rcpts, verdict.findings, lifetime=lifetime)
        return LinkRewrite(targets.keeping(base), signer)
    return LinkRewrite(targets)


def banner_for(verdict: Verdict, policy: Policy, actions: Actions, targets: LinkTargets) -> Banner:
    """The banner for ``verdict``: the brands claimed, their advice and the main reasons,
    in each of ``actions.banner_languages`` (:mod:`milter.engine.banner_text`).

    Hosts named in the reasons are defanged, so the banner itself links nowhere.
    """
    return render_blocks(banner_blocks(verdict, policy, actions.banner_languages, targets))


def brand_proven(verdict: Verdict, policy: Policy) -> bool:
    """True when the message claims a brand and carries a valid DKIM signature of that
    brand's own domains: its body and subject are left untouched (any edit would break
    the signature that proves it for the next hop)."""
    if verdict.brand is None or verdict.brand not in policy.brands:
        return False
    if any(f.code is Code.BRAND_AUTH_FAIL for f in verdict.findings):
        return False
    brand = policy.brand(verdict.brand)
    own = (*brand.domains, *brand.dkim_domains)
    signers = {r.signer for r in verdict.auth if r.result is AuthStatus.PASS}
    return any(s and (s == d or s.endswith("." + d)) for s in signers for d in own)


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

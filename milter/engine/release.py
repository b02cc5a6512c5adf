"""What a message released from quarantine looks like: the banner stays unless the admin
says the quarantine was a false positive.

A message held for impersonation (a brand claimed and not proven, or a disguised link)
that an admin releases "to let the user see it" must still warn its reader: it gets the
banner and its links neutralised, exactly as a tagged message would. Released as a false
positive, it is delivered as it arrived. The quarantine's release code
(:mod:`milter.quarantine`, ``tocsin quarantine release``, the review app) calls
:func:`release_body` with the verdict it stored and applies the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from milter.engine.plan import BANNER, body_edit
from milter.mime.parse import parse_message
from milter.model.codes import DISGUISED_LINKS, UNPROVEN_BRAND
from milter.model.findings import Finding, Severity
from milter.model.verdict import Disposition, Verdict
from milter.policy.model import Policy

RELEASE_ACTIONS = frozenset({BANNER, "defang_links"})


def held_for_impersonation(verdict: Verdict) -> bool:
    """True when the verdict names an unproven brand claim or a disguised link."""
    return any(
        f.severity >= Severity.MEDIUM and (f.code in UNPROVEN_BRAND or f.code in DISGUISED_LINKS)
        for f in verdict.findings
    )


def verdict_from_record(data: Mapping[str, Any]) -> Verdict:
    """The verdict a quarantine record stored (``Verdict.as_dict()``), enough to rebuild
    its banner. Raises ValueError or KeyError for anything else."""
    findings = tuple(Finding.from_dict(f) for f in data.get("findings") or ())
    return Verdict(
        Disposition(str(data.get("verdict", "quarantine"))),
        data.get("brand") or None,
        float(data.get("score") or 0.0),
        findings,
        (),
    )


def release_body(
    raw: bytes,
    stored: Mapping[str, Any],
    policy: Policy,
    *,
    false_positive: bool,
    rcpts: Sequence[str] = (),
) -> bytes | None:
    """The new body to deliver on release, or None to deliver ``raw`` unchanged (a false
    positive, a verdict that was not about impersonation, or a body we must not edit).
    ``rcpts``: the held message's envelope recipients (their policy; redirect links)."""
    if false_positive:
        return None
    verdict = verdict_from_record(stored)
    if not held_for_impersonation(verdict):
        return None
    tagged = Verdict(
        Disposition.TAG, verdict.brand, verdict.score, verdict.findings, (), (), RELEASE_ACTIONS
    )
    mime = parse_message(raw)
    actions = policy.effective(tuple(rcpts)).actions
    return body_edit(tagged, mime, policy, actions, rcpts)

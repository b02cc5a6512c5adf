"""decide(findings, policy) → Verdict: first matching rule wins, scores as the fallback.

Pure: no I/O, no clock. Every rule that decided, and the allowlist entries that
removed findings, are kept as reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from milter.model.auth import AuthResult, AuthStatus
from milter.model.codes import Code
from milter.model.envelope import Envelope
from milter.model.findings import CHECK_ERROR, Finding, Severity
from milter.model.verdict import Disposition, Reason, Verdict
from milter.policy.model import Policy
from milter.policy.schema import Condition, Scoring


def score_of(finding: Finding, scoring: Scoring) -> float:
    """The score of one finding under ``scoring``."""
    if finding.code in scoring.codes:
        return scoring.codes[finding.code]
    severity: Any = str(finding.severity)  # one of the Literal keys of scoring.severity
    return float(scoring.severity.get(severity, 0.0))


def decide(
    findings: Sequence[Finding],
    policy: Policy,
    *,
    envelope: Envelope | None = None,
    from_domain: str | None = None,
    brand: str | None = None,
    auth: Sequence[AuthResult] = (),
) -> Verdict:
    """The verdict for these findings under ``policy``."""
    envelope = envelope or Envelope()
    findings, proven_reasons = own_phrasing(findings, brand, auth)
    kept, allow_reasons = _apply_allowlist(findings, policy, envelope, from_domain)
    allow_reasons = [*proven_reasons, *allow_reasons]
    effective = policy.effective(envelope.rcpts)
    score = round(sum(score_of(f, effective.scoring) for f in kept), 2)
    rule = next((r for r in effective.rules if _matches(r.when, kept, brand, score)), None)
    if rule is not None:
        reason = Reason(
            rule.name, rule.verdict, rule.description or rule.name, _codes(rule.when, kept)
        )
        disposition, extra = rule.verdict, rule.actions
    else:
        disposition = _by_score(score, effective.scoring)
        reason = Reason(
            "score", disposition, score_text(score, effective.scoring), _top_codes(kept)
        )
        extra = ()
    actions = frozenset(extra) | (
        frozenset(effective.actions.tag) if disposition is Disposition.TAG else frozenset()
    )
    verdict = Verdict(
        disposition, brand, score, tuple(kept), (reason, *allow_reasons), tuple(auth), actions
    )
    if policy.document.monitor or (rule is not None and rule.monitor):
        return monitored(verdict)
    return verdict


def monitored(verdict: Verdict) -> Verdict:
    """Monitor mode: keep the would-be verdict and its reasons, deliver unchanged."""
    would = verdict.disposition
    note = Reason(
        "monitor", Disposition.ACCEPT, f"monitor mode: would {would}, delivered unchanged"
    )
    return replace(
        verdict,
        disposition=Disposition.ACCEPT,
        reasons=(*verdict.reasons, note),
        actions=frozenset(),
        would=would,
    )


def _apply_allowlist(
    findings: Sequence[Finding], policy: Policy, envelope: Envelope, from_domain: str | None
) -> tuple[list[Finding], list[Reason]]:
    entries = policy.allow_entries(from_domain, envelope.mail_from_domain, envelope.client_ip)
    kept = list(findings)
    reasons = []
    for entry in entries:
        dropped = [
            f for f in kept if f.code != CHECK_ERROR and (not entry.codes or f.code in entry.codes)
        ]
        if dropped:
            kept = [f for f in kept if f not in dropped]
            codes = tuple(sorted({f.code for f in dropped}))
            reasons.append(
                Reason("allowlist", Disposition.ACCEPT, f"allowlisted: {entry.reason}", codes)
            )
    return kept, reasons


def _matches(cond: Condition, findings: Sequence[Finding], brand: str | None, score: float) -> bool:
    codes = {f.code for f in findings}
    relevant = [f for f in findings if not cond.any or f.code in cond.any]
    checks = (
        not cond.any or bool(codes & set(cond.any)),
        set(cond.all) <= codes,
        not (codes & set(cond.none)),
        cond.min_severity is None
        or any(f.severity >= Severity.parse(cond.min_severity) for f in relevant),
        cond.brand_claimed is None or cond.brand_claimed == (brand is not None),
        cond.min_score is None or score >= cond.min_score,
    )
    return all(checks)


PHRASING = frozenset({Code.BRAND_NEVER_ASKS, Code.URGENCY})
CONTRADICTS = frozenset({Code.LINK_LOOKALIKE, Code.LINK_TEXT_MISMATCH, Code.PHONE_NOT_OFFICIAL})


def own_phrasing(
    findings: Sequence[Finding], brand: str | None, auth: Sequence[AuthResult]
) -> tuple[list[Finding], list[Reason]]:
    """Mail that proved the brand (From is the brand's domain, aligned DMARC pass, no
    brand-auth failure) is not judged on the brand's own phrasing: its BRAND_NEVER_ASKS and
    URGENCY findings become info, unless a link or a callback number contradicts the brand
    (a lookalike or disguised link, a number the brand does not publish)."""
    if brand is None or not _proven(findings, brand, auth):
        return list(findings), []
    if any(f.code in CONTRADICTS and f.severity > Severity.INFO for f in findings):
        return list(findings), []
    softened = [
        replace(f, severity=Severity.INFO, text=f"{f.text} (not counted: the brand proved itself)")
        if f.code in PHRASING and f.brand == brand
        else f
        for f in findings
    ]
    codes = tuple(sorted({f.code for f in findings if f.code in PHRASING and f.brand == brand}))
    if not codes:
        return list(findings), []
    text = f"{brand} proved itself (aligned DMARC pass): its own wording is not held against it"
    return softened, [Reason("brand-proven", Disposition.ACCEPT, text, codes)]


def _proven(findings: Sequence[Finding], brand: str, auth: Sequence[AuthResult]) -> bool:
    own_domain = any(
        f.code is Code.BRAND_CLAIM and f.brand == brand and f.evidence.get("via") == "from-domain"
        for f in findings
    )
    failed = any(f.code is Code.BRAND_AUTH_FAIL for f in findings)
    dmarc_pass = any(r.method == "dmarc" and r.result is AuthStatus.PASS for r in auth)
    return own_domain and dmarc_pass and not failed


def score_text(score: float, scoring: Scoring) -> str:
    """What the score did, in words: "score 6 ≥ tag threshold 3", or "score 2 below every
    threshold (tag 3)"."""
    levels = scoring.thresholds
    for name, level in (
        ("reject", levels.reject),
        ("quarantine", levels.quarantine),
        ("tag", levels.tag),
    ):
        if level is not None and score >= level:
            return f"score {score:g} ≥ {name} threshold {level:g}"
    lowest = next(
        (
            (n, v)
            for n, v in (
                ("tag", levels.tag),
                ("quarantine", levels.quarantine),
                ("reject", levels.reject),
            )
            if v is not None
        ),
        None,
    )
    if lowest is None:
        return f"score {score:g} (no score thresholds set)"
    return f"score {score:g} below every threshold ({lowest[0]} {lowest[1]:g})"


def _by_score(score: float, scoring: Scoring) -> Disposition:
    levels = scoring.thresholds
    for level, disposition in (
        (levels.reject, Disposition.REJECT),
        (levels.quarantine, Disposition.QUARANTINE),
        (levels.tag, Disposition.TAG),
    ):
        if level is not None and score >= level:
            return disposition
    return Disposition.ACCEPT


def _codes(cond: Condition, findings: Sequence[Finding]) -> tuple[str, ...]:
    wanted = set(cond.any) | set(cond.all)
    return tuple(sorted({f.code for f in findings if not wanted or f.code in wanted}))


def _top_codes(findings: Sequence[Finding]) -> tuple[str, ...]:
    return tuple(sorted({f.code for f in findings if f.severity > Severity.INFO}))

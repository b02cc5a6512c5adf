"""Run every check concurrently over one parsed message; turn failures into findings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from milter.checks.base import Check, CheckContext, Outcome
from milter.checks.body_links import BodyLinks
from milter.checks.claim import BrandClaim, find_claim
from milter.checks.registry import default_checks
from milter.dns.resolver import Resolver
from milter.engine.decide import decide
from milter.engine.plan import plan
from milter.mime.parse import MimeLimits, MimeView, parse_message
from milter.mime.spool import RawMessage
from milter.model.auth import AuthResult
from milter.model.budget import WorkBudgetExceeded, work_budget
from milter.model.envelope import Envelope
from milter.model.findings import CHECK_ERROR, Finding, Severity
from milter.model.limits import DEFAULT_ON_LIMIT, LIMIT_EXCEEDED, LimitHit
from milter.model.plan import ActionPlan
from milter.model.verdict import Disposition, Reason, Verdict
from milter.policy.model import Policy
from milter.quarantine.token import honour_release

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Everything one scan produced: the parsed view, the verdict and the plan."""

    mime: MimeView
    verdict: Verdict
    plan: ActionPlan
    elapsed_ms: float


async def scan(
    raw: bytes | RawMessage,
    envelope: Envelope,
    policy: Policy,
    resolver: Resolver | None = None,
    checks: Sequence[Check] | None = None,
) -> ScanResult:
    """Parse once, run the checks, decide and plan. Never raises for a bad message.

    ``raw`` is the message in memory, or as a front-end received it (`RawMessage`: maybe
    spooled, maybe only its first bytes). Past ``limits.max_message_bytes`` only that
    many bytes are scanned, and a ``LIMIT_EXCEEDED`` finding (limit ``size``) says so.
    """
    started = time.perf_counter()
    limits = policy.document.limits
    mime_limits = MimeLimits(
        max_parts=limits.max_parts,
        max_depth=limits.max_depth,
        max_headers=limits.max_headers,
        text_work_seconds=limits.check_timeout_seconds,  # the HTML's visible text, before checks
    )
    source = raw if isinstance(raw, RawMessage) else RawMessage.from_bytes(raw)
    mime = parse_message(source.prefix(limits.max_message_bytes), mime_limits)
    links = BodyLinks(mime)  # extracted once, for the claim and the links check
    claim, claim_hits = _find_claim(mime, policy, links, limits.check_timeout_seconds)
    ctx = CheckContext(envelope, mime, policy, claim, resolver, links)
    with work_budget(limits.check_timeout_seconds):  # long loops stop here (checkpoint)
        findings, auth = await run_checks(
            ctx, checks or default_checks(), limits.check_timeout_seconds
        )
    findings += claim_hits + tuple(hit.finding("mime") for hit in mime.limits_hit)
    from_domains = [a.domain for a in mime.from_addresses if a.domain]
    verdict = decide(
        findings,
        policy,
        envelope=envelope,
        from_domain=from_domains[0] if from_domains else None,
        brand=ctx.claim.brand if ctx.claim else None,
        auth=auth,
    )
    verdict = on_limit(verdict, policy)
    verdict = honour_release(
        verdict, mime.header_block, envelope
    )  # an admin released it: deliver, tagged
    action_plan = plan(verdict, mime, policy, envelope)
    elapsed = (time.perf_counter() - started) * 1000
    return ScanResult(mime, verdict, action_plan, elapsed)


def _find_claim(
    mime: MimeView, policy: Policy, links: BodyLinks, seconds: float
) -> tuple[BrandClaim | None, tuple[Finding, ...]]:
    """The brand claim, under a work budget of its own: a body claim reads the body's
    links, whose extraction a hostile body can make long. Out of budget: no claim, and a
    LIMIT_EXCEEDED finding (limit ``work``) for the policy's ``on_limit``."""
    try:
        with work_budget(seconds):
            return find_claim(mime, policy, links), ()
    except WorkBudgetExceeded as exc:
        log.warning("brand claim stopped: %s", exc)
        hit = LimitHit("work", exc.where, f"work budget of {seconds:g} s spent")
        return None, (hit.finding("claim"),)


async def run_checks(
    ctx: CheckContext, checks: Sequence[Check], seconds: float
) -> tuple[tuple[Finding, ...], tuple[AuthResult, ...]]:
    """Run all checks, each under ``seconds`` seconds; results in ``checks`` order.

    Checks that wait for DNS run as tasks under ``asyncio.timeout``; they start first,
    so their queries are in flight while the CPU-only checks (``awaits_io = False``)
    run inline, one after the other. A task and a timer per CPU check would cost CPU and
    buy nothing: a check that never awaits cannot be interrupted by a timeout (the work
    budget stops its long loops instead). When the scan is cancelled, the DNS checks'
    tasks are cancelled with it (``asyncio.wait`` alone would leave them running)."""
    waiting = {
        i: asyncio.ensure_future(_guarded(check, ctx, seconds))
        for i, check in enumerate(checks)
        if awaits_io(check)
    }
    try:
        if waiting:
            await asyncio.sleep(0)  # let them send their first queries
        inline = {
            i: await _inline(check, ctx, seconds)
            for i, check in enumerate(checks)
            if i not in waiting
        }
        if waiting:
            await asyncio.wait(waiting.values())
    except BaseException:  # the scan was cancelled (deadline, client gone): so are its checks
        for task in waiting.values():
            task.cancel()
        raise
    results = [waiting[i].result() if i in waiting else inline[i] for i in range(len(checks))]
    items = [item for batch in results for item in batch]
    findings = tuple(i for i in items if isinstance(i, Finding))
    auth = tuple(i for i in items if isinstance(i, AuthResult))
    return findings, auth


def awaits_io(check: Check) -> bool:
    """True unless the check declares ``awaits_io = False`` (its run never awaits)."""
    return bool(getattr(check, "awaits_io", True))


async def _guarded(check: Check, ctx: CheckContext, seconds: float) -> Sequence[Outcome]:
    try:
        async with asyncio.timeout(seconds):
            return await check.run(ctx)
    except TimeoutError:
        return (_check_error(check, f"timed out after {seconds:g} s"),)
    except WorkBudgetExceeded as exc:
        return _over_budget(check, exc, seconds)
    except Exception as exc:  # a check's bug must become a decision, never a lost message
        log.exception("check %s failed", check.name)
        return (_check_error(check, f"{type(exc).__name__}: {exc}"),)


async def _inline(check: Check, ctx: CheckContext, seconds: float) -> Sequence[Outcome]:
    try:
        return await check.run(ctx)
    except WorkBudgetExceeded as exc:
        return _over_budget(check, exc, seconds)
    except Exception as exc:  # as in _guarded
        log.exception("check %s failed", check.name)
        return (_check_error(check, f"{type(exc).__name__}: {exc}"),)


def _over_budget(check: Check, exc: WorkBudgetExceeded, seconds: float) -> Sequence[Outcome]:
    """A long loop stopped at a checkpoint: the scan goes on with what fits."""
    log.warning("check %s stopped: %s", check.name, exc)
    detail = f"work budget of {seconds:g} s spent"
    return (LimitHit("work", exc.where, detail).finding(check.name),)


def _check_error(check: Check, detail: str) -> Finding:
    return Finding(
        CHECK_ERROR,
        check.name,
        Severity.HIGH,
        f"check {check.name} could not run: {detail}",
        None,
        {"check": check.name, "error": detail},
    )


def on_limit(verdict: Verdict, policy: Policy) -> Verdict:
    """Apply the policy's ``limits.on_limit`` to the limits this message hit.

    "scan" (the default) keeps the verdict reached on what fits; "tempfail" or "reject"
    replaces it (reject first when both apply) with a reason naming the limit. The verdict
    header lists ``LIMIT_EXCEEDED`` among its codes either way.
    """
    chosen: dict[str, str] = dict(DEFAULT_ON_LIMIT)
    chosen.update((str(k), str(v)) for k, v in policy.document.limits.on_limit.items())
    refused = [
        (Disposition(chosen[f.evidence.get("limit", "")]), f)
        for f in verdict.findings
        if f.code == LIMIT_EXCEEDED and chosen.get(f.evidence.get("limit", ""), "scan") != "scan"
    ]
    if not refused or verdict.monitored:
        return verdict
    disposition, finding = max(refused, key=lambda pair: pair[0] is Disposition.REJECT)
    limit = finding.evidence.get("limit", "")
    text = f"limit {limit} exceeded ({finding.evidence.get('detail', '')})"
    reason = Reason(f"limit-{limit}", disposition, text, (LIMIT_EXCEEDED,))
    return replace(verdict, disposition=disposition, reasons=(reason, *verdict.reasons))

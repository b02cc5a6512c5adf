"""Run every check concurrently over one parsed message; turn failures into findings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from milter.checks.base import Check, CheckContext, Outcome
from milter.checks.claim import find_claim
from milter.checks.registry import default_checks
from milter.dns.resolver import Resolver
from milter.engine.decide import decide
from milter.engine.plan import plan
from milter.mime.parse import MimeLimits, MimeView, parse_message
from milter.model.auth import AuthResult
from milter.model.envelope import Envelope
from milter.model.findings import CHECK_ERROR, Finding, Severity
from milter.model.plan import ActionPlan
from milter.model.verdict import Verdict
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
    raw: bytes,
    envelope: Envelope,
    policy: Policy,
    resolver: Resolver | None = None,
    checks: Sequence[Check] | None = None,
) -> ScanResult:
    """Parse once, run the checks, decide and plan. Never raises for a bad message."""
    started = time.perf_counter()
    limits = policy.document.limits
    mime = parse_message(raw, MimeLimits(max_parts=limits.max_parts))
    ctx = CheckContext(envelope, mime, policy, find_claim(mime, policy), resolver)
    findings, auth = await run_checks(ctx, checks or default_checks(), limits.check_timeout_seconds)
    from_domains = [a.domain for a in mime.from_addresses if a.domain]
    verdict = decide(
        findings,
        policy,
        envelope=envelope,
        from_domain=from_domains[0] if from_domains else None,
        brand=ctx.claim.brand if ctx.claim else None,
        auth=auth,
    )
    verdict = honour_release(verdict, raw, envelope)  # an admin released it: deliver, tagged
    action_plan = plan(verdict, mime, policy, envelope)
    elapsed = (time.perf_counter() - started) * 1000
    return ScanResult(mime, verdict, action_plan, elapsed)


async def run_checks(
    ctx: CheckContext, checks: Sequence[Check], seconds: float
) -> tuple[tuple[Finding, ...], tuple[AuthResult, ...]]:
    """Run all checks concurrently, each under ``seconds`` seconds."""
    results = await asyncio.gather(*(_guarded(check, ctx, seconds) for check in checks))
    items = [item for batch in results for item in batch]
    findings = tuple(i for i in items if isinstance(i, Finding))
    auth = tuple(i for i in items if isinstance(i, AuthResult))
    return findings, auth


async def _guarded(check: Check, ctx: CheckContext, seconds: float) -> Sequence[Outcome]:
    try:
        async with asyncio.timeout(seconds):
            return await check.run(ctx)
    except TimeoutError:
        return (_check_error(check, f"timed out after {seconds:g} s"),)
    except Exception as exc:  # a check's bug must become a decision, never a lost message
        log.exception("check %s failed", check.name)
        return (_check_error(check, f"{type(exc).__name__}: {exc}"),)


def _check_error(check: Check, detail: str) -> Finding:
    return Finding(
        CHECK_ERROR,
        check.name,
        Severity.HIGH,
        f"check {check.name} could not run: {detail}",
        None,
        {"check": check.name, "error": detail},
    )

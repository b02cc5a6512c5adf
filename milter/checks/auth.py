"""Sender authentication (SPF, DKIM, DMARC, ARC) and brand enforcement.

A message whose From domain is a protected brand's must prove it: an aligned DMARC
pass (for ``strict`` brands whatever DMARC policy the brand publishes), and a DKIM
signature from the pinned domains when the policy pins them. Anything less is a
``BRAND_AUTH_FAIL`` saying exactly what failed and what was expected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from milter.auth.arc import ArcResult, ArcWork, arc_override, finish_arc, start_arc
from milter.auth.authres import ParsedAuthres
from milter.auth.dkim import DkimWork, finish_dkim, start_dkim
from milter.auth.dkimpy_feed import DkimpyMessage, prepare
from milter.auth.dmarc import DmarcResult, check_dmarc
from milter.auth.spf import check_spf
from milter.auth.upstream import (
    UpstreamResult,
    adopt,
    arc_from_upstream,
    dkim_from_upstream,
    dmarc_from_upstream,
    spf_from_upstream,
    trusted_block,
)
from milter.checks.base import CheckContext, Outcome
from milter.checks.claim import BrandClaim, ClaimVia
from milter.dns.budget import BudgetResolver
from milter.dns.resolver import Resolver
from milter.model.auth import AuthResult, AuthStatus
from milter.model.codes import Code
from milter.model.findings import Finding, Severity

NAME = "auth"
AUTHRES = "Authentication-Results"
MAX_QUERIES = 60  # SPF alone may use ~22 (RFC 7208 §4.6.4); DKIM, ARC and DMARC the rest


class AuthCheck:
    """SPF, DKIM and ARC concurrently, then DMARC, then the brand's requirements.

    Results from trusted upstream Authentication-Results headers stand in for ours as
    ``milter.auth.upstream`` says: SPF behind an internal hop, the rest only where our
    own check ended in ``temperror``.
    """

    name = NAME

    async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
        """AuthResults for the A-R header, and findings for what failed."""
        if ctx.resolver is None:
            return _offline(ctx)
        limits = ctx.policy.document.limits
        resolver = BudgetResolver(ctx.resolver, limits.dns_budget_seconds, MAX_QUERIES)
        block = _trusted_block(ctx)
        env = ctx.envelope
        upstream_spf = spf_from_upstream(block, env.client_ip, env.mail_from)
        for_dkimpy = prepare(ctx.mime.source)  # header block parsed once for DKIM and ARC
        spf, own_dkim, own_arc = await _spf_dkim_arc(ctx, resolver, upstream_spf, for_dkimpy)
        dkim, from_dkim = dkim_from_upstream(own_dkim, block)
        arc, from_arc = arc_from_upstream(own_arc, block)
        dmarc = await _dmarc(ctx, resolver, spf[0] if spf else None, dkim)
        from_dmarc = None
        if dmarc is not None:
            dmarc, from_dmarc = dmarc_from_upstream(dmarc, block)
        results: list[AuthResult] = [*spf, *dkim, arc.auth_result()]
        if dmarc is not None:
            results.append(dmarc.auth_result())
        found = _findings(ctx, dkim, arc, dmarc, results)
        taken = [*upstream_spf, *from_dkim, *([from_arc] if from_arc else [])]
        taken += [from_dmarc] if from_dmarc else []
        if taken:
            found.append(_upstream_finding(ctx, taken))
        return [*results, *found]


async def _spf_dkim_arc(
    ctx: CheckContext,
    resolver: Resolver,
    upstream_spf: Sequence[UpstreamResult],
    for_dkimpy: DkimpyMessage | bytes,
) -> tuple[list[AuthResult], tuple[AuthResult, ...], ArcResult]:
    """SPF, DKIM and ARC, their DNS queries concurrent, as ``asyncio.gather`` ran them, and
    in the same order: SPF's first, then DKIM's, then ARC's. Only DKIM and ARC with keys
    to fetch get a task; SPF runs in this one (the tasks and their wake-ups were ~60 us
    of every message's CPU, and most messages have nothing to fetch for one of them)."""
    dkim_started, arc_started = start_dkim(for_dkimpy), start_arc(for_dkimpy)
    dkim: asyncio.Task[tuple[AuthResult, ...]] | tuple[AuthResult, ...] = (
        asyncio.ensure_future(finish_dkim(dkim_started, resolver))
        if isinstance(dkim_started, DkimWork)
        else dkim_started
    )
    arc: asyncio.Task[ArcResult] | ArcResult = (
        asyncio.ensure_future(finish_arc(arc_started, resolver))
        if isinstance(arc_started, ArcWork)
        else arc_started
    )
    try:
        spf = await _spf(ctx, resolver, upstream_spf)  # the tasks start when this waits
        own_dkim = await dkim if isinstance(dkim, asyncio.Task) else dkim
        own_arc = await arc if isinstance(arc, asyncio.Task) else arc
    except BaseException:  # cancelled (check timeout, scan gone), or a bug: so are the tasks
        for task in (dkim, arc):
            if isinstance(task, asyncio.Task):
                task.cancel()
        raise
    return spf, own_dkim, own_arc


def _trusted_block(ctx: CheckContext) -> tuple[ParsedAuthres, ...]:
    settings = ctx.policy.document.authentication
    if not settings.trusted_authserv_ids:
        return ()
    values = ctx.mime.header_values(AUTHRES)
    return trusted_block(values, settings.authserv_id, settings.trusted_authserv_ids)


async def _spf(
    ctx: CheckContext, resolver: Resolver, upstream: Sequence[UpstreamResult]
) -> list[AuthResult]:
    """SPF results, MAIL FROM first: adopted from upstream, or our own check."""
    if upstream:
        return [adopt(result) for result in upstream]
    env = ctx.envelope
    if not env.client_ip:
        return []
    report = await check_spf(env.client_ip, env.mail_from or "", env.helo or "", resolver)
    return report.auth_results()


async def _dmarc(
    ctx: CheckContext, resolver: Resolver, spf: AuthResult | None, dkim: Sequence[AuthResult]
) -> DmarcResult | None:
    address = ctx.mime.from_address
    if address is None or not address.domain:
        return None
    mode = ctx.policy.document.authentication.org_domain_mode
    return await check_dmarc(resolver, address.domain, spf, dkim, org_domain_mode=mode)


def _upstream_finding(ctx: CheckContext, taken: Sequence[UpstreamResult]) -> Finding:
    ids = ", ".join(dict.fromkeys(u.authserv_id for u in taken))
    used = ", ".join(f"{u.result.method}={u.result.result}" for u in taken)
    return Finding(
        Code.AUTH_UPSTREAM,
        NAME,
        Severity.INFO,
        f"results taken from trusted upstream {ids}: {used}",
        ctx.claim.brand if ctx.claim else None,
        {"authserv_ids": ids, "results": used},
    )


def _offline(ctx: CheckContext) -> list[Outcome]:
    claim = ctx.claim
    if claim is None or claim.via is not ClaimVia.FROM_DOMAIN:
        return []
    return [
        Finding(
            Code.AUTH_SKIPPED,
            NAME,
            Severity.INFO,
            f"From domain {claim.from_domain} is {claim.brand}'s but authentication was not "
            "checked (no DNS)",
            claim.brand,
            {"from_domain": claim.from_domain},
        )
    ]


def _findings(
    ctx: CheckContext,
    dkim: Sequence[AuthResult],
    arc: ArcResult,
    dmarc: DmarcResult | None,
    results: Sequence[AuthResult],
) -> list[Finding]:
    claim = ctx.claim
    brand = claim.brand if claim else None
    found: list[Finding] = []
    temp = [r for r in results if r.result is AuthStatus.TEMPERROR]
    if temp:
        methods = ", ".join(sorted({r.method for r in temp}))
        found.append(
            Finding(
                Code.AUTH_TEMPERROR,
                NAME,
                Severity.LOW,
                f"temporary DNS failure during {methods}",
                brand,
                {"methods": methods, "reason": temp[0].reason},
            )
        )
    trusted = ctx.policy.document.authentication.trusted_arc_sealers
    overridden = arc_override(arc, trusted)
    if dmarc is not None and dmarc.status is AuthStatus.FAIL and not overridden:
        found.append(_dmarc_fail(dmarc, brand))
    if claim is not None and claim.via is ClaimVia.FROM_DOMAIN and not temp:
        found += _brand_requirements(ctx, claim, dkim, dmarc, overridden)
    return found


def _dmarc_fail(dmarc: DmarcResult, brand: str | None) -> Finding:
    policy = str(dmarc.applied_policy) if dmarc.applied_policy else "none"
    severity = Severity.MEDIUM if policy in ("quarantine", "reject") else Severity.LOW
    return Finding(
        Code.DMARC_FAIL,
        NAME,
        severity,
        f"DMARC fails for {dmarc.from_domain} (policy {policy}): {dmarc.reason}",
        brand,
        {"from_domain": dmarc.from_domain, "policy": policy, "reason": dmarc.reason},
    )


def _brand_requirements(
    ctx: CheckContext,
    claim: BrandClaim,
    dkim: Sequence[AuthResult],
    dmarc: DmarcResult | None,
    arc_overrides: bool,
) -> list[Finding]:
    brand = ctx.policy.brand(claim.brand)
    problems: list[str] = []
    dmarc_status = dmarc.status if dmarc else AuthStatus.NONE
    unproven = dmarc_status is not AuthStatus.PASS and not arc_overrides
    if unproven and (brand.strict or dmarc_status is AuthStatus.FAIL):
        reason = dmarc.reason if dmarc else "no single From address"
        problems.append(f"no aligned DMARC pass (dmarc={dmarc_status}: {reason})")
    if brand.dkim_domains:
        signers = {r.signer for r in dkim if r.result is AuthStatus.PASS}
        if not signers & set(brand.dkim_domains):
            problems.append(
                f"no valid DKIM signature from {', '.join(brand.dkim_domains)} "
                f"(valid signers: {', '.join(sorted(signers - {''})) or 'none'})"
            )
    if not problems:
        return []
    return [
        Finding(
            Code.BRAND_AUTH_FAIL,
            NAME,
            Severity.CRITICAL,
            f"From {claim.from_domain} claims {brand.name} but is not proven: "
            + "; ".join(problems),
            claim.brand,
            {
                "from_domain": claim.from_domain,
                "failed": "; ".join(problems),
                "expected": "aligned DMARC pass from " + ", ".join(brand.domains),
            },
        )
    ]

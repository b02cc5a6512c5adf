"""Sender authentication (SPF, DKIM, DMARC, ARC) and brand enforcement.

A message whose From domain is a protected brand's must prove it: an aligned DMARC
pass (for ``strict`` brands whatever DMARC policy the brand publishes), and a DKIM
signature from the pinned domains when the policy pins them. Anything less is a
``BRAND_AUTH_FAIL`` saying exactly what failed and what was expected.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any

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
    """SPF, DKIM and ARC, their DNS queries concurrent and asked in the order
    ``asyncio.gather`` asked them (SPF's first, then DKIM's, then ARC's; with several DKIM
    signatures ARC's key can go out before theirs, in the same turn), but with a task
    only where one has to wait while the next starts (`_in_order`), and no coroutine at all
    for DKIM or ARC when they need no DNS (no signature, no ARC field): the tasks and
    their wake-ups were ~60 us of every message's CPU with the cache warm."""
    dkim_started, arc_started = start_dkim(for_dkimpy), start_arc(for_dkimpy)
    rest: list[Coroutine[Any, Any, object]] = []
    if isinstance(dkim_started, DkimWork):
        rest.append(finish_dkim(dkim_started, resolver))
    if isinstance(arc_started, ArcWork):
        rest.append(finish_arc(arc_started, resolver))
    spf, *done = await _in_order([_spf(ctx, resolver, upstream_spf), *rest])
    own_dkim = done.pop(0) if isinstance(dkim_started, DkimWork) else dkim_started
    own_arc = done.pop(0) if isinstance(arc_started, ArcWork) else arc_started
    assert isinstance(spf, list)
    assert isinstance(own_dkim, tuple)
    assert isinstance(own_arc, ArcResult)
    return spf, own_dkim, own_arc


async def _in_order(coros: Sequence[Coroutine[Any, Any, object]]) -> list[object]:
    """``asyncio.gather(*coros)`` run in this task as far as it can be: each coroutine
    runs here, in order, until one has to wait; the ones after it then start as tasks
    (their first steps run while it waits, in order, as gather's tasks did) and are
    awaited once it is done. A coroutine run here never leaves this task, so a timeout
    inside it cancels the task that is awaiting it, as in a task of its own. Cancelled
    (check timeout, scan gone) or failing, it cancels the tasks it started."""
    results: list[object] = [None] * len(coros)
    tasks: dict[int, asyncio.Task[object]] = {}
    index = 0

    def start_the_rest() -> None:
        for later in range(index + 1, len(coros)):
            tasks[later] = asyncio.ensure_future(coros[later])

    try:
        while index < len(coros) and not tasks:
            results[index] = await _until_it_waits(coros[index], start_the_rest)
            index += 1
        for later, task in tasks.items():
            results[later] = await task
    except BaseException:
        for task in tasks.values():
            task.cancel()
        for never in coros[index + 1 :] if not tasks else ():
            never.close()  # not started: no "never awaited" warning
        raise
    return results


@types.coroutine
def _until_it_waits(
    coro: Coroutine[Any, Any, object], on_wait: Callable[[], None]
) -> Generator[Any, Any, object]:
    """``await coro``, calling ``on_wait`` once, just before ``coro`` first waits (not at
    all when it never does). What ``yield from`` does, step by step: what ``coro`` yields
    goes to the event loop, what the loop sends or throws goes back to ``coro``."""
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            waiting = coro.send(sent) if thrown is None else coro.throw(thrown)
        except StopIteration as stop:
            return stop.value
        if on_wait is not None:
            on_wait()
            on_wait = None  # type: ignore[assignment]
        try:
            sent, thrown = (yield waiting), None
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to coro, as yield from does
            sent, thrown = None, exc


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

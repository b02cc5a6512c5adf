"""DMARC (RFC 9989): does the RFC5322.From domain match an authenticated identifier?

Split as in style.md §1.6: ``lookup_dmarc`` does every DNS query (policy record, the
Organizational Domains needed for relaxed alignment, whether the Author Domain exists) and
``evaluate`` is a pure function of what was fetched plus the SPF and DKIM results.
``check_dmarc`` runs both and turns DNS failures into ``temperror``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from milter.auth.dmarc_record import Alignment, DmarcRecord, Policy
from milter.auth.orgdomain import (
    OrgDomainMode,
    StepCache,
    WalkStep,
    fetch_step,
    organizational_domain,
    policy_step,
    psl_organizational_domain,
    tree_walk,
)
from milter.dns.resolver import DnsError, DnsTimeout, Resolver
from milter.model.auth import AuthResult, AuthStatus

__all__ = [
    "DmarcLookup",
    "DmarcResult",
    "aligned",
    "authenticated_domains",
    "check_dmarc",
    "domain_exists",
    "evaluate",
    "lookup_dmarc",
    "normalize_domain",
    "select_policy",
]

METHOD = "dmarc"


@dataclass(frozen=True, slots=True)
class DmarcLookup:
    """Everything DNS told us for one message; the input of ``evaluate``."""

    from_domain: str
    record: DmarcRecord | None
    policy_domain: str | None  # where the record was found
    org_domain: str  # Organizational Domain of the From domain
    org_domains: Mapping[str, str] = field(default_factory=dict)  # of SPF/DKIM domains
    author_exists: bool = True  # RFC 9989 §4.7 np=: NXDOMAIN/NODATA for A, AAAA and MX
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DmarcResult:
    """The DMARC verdict for one message."""

    status: AuthStatus  # pass / fail / none / temperror / permerror
    from_domain: str
    reason: str
    policy: Policy | None = None  # the p=, sp= or np= that covers the From domain
    applied_policy: Policy | None = None  # on fail: what the owner asks for, after t=y
    testing: bool = False  # the record has t=y
    policy_domain: str | None = None
    org_domain: str | None = None
    aligned_dkim: tuple[str, ...] = ()  # d= of passing, aligned signatures
    aligned_spf: str | None = None  # the SPF domain when it passed and aligned

    def auth_result(self) -> AuthResult:
        """This verdict as an RFC 8601 result (``header.from``, and ``policy.dmarc`` on fail)."""
        props = {"header.from": self.from_domain} if self.from_domain else {}
        if self.applied_policy is not None:
            props["policy.dmarc"] = str(self.applied_policy)
        return AuthResult(METHOD, self.status, self.reason, props)


def normalize_domain(domain: str) -> str | None:
    """Lower-case A-label form without the final dot, or None when it is not a domain."""
    name = domain.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return None
    labels = name.split(".")
    if not name or len(name) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        return None
    return name


def authenticated_domains(
    spf: AuthResult | None, dkim: Sequence[AuthResult]
) -> tuple[str | None, tuple[str, ...]]:
    """(SPF domain if SPF passed, d= of every passing DKIM signature) (RFC 9989 §4.4).

    The SPF domain is the MAIL FROM domain (``smtp.mailfrom``), or the HELO name
    (``smtp.helo``) when MAIL FROM was empty, as RFC 7208 §2.4 checks it then.
    """
    spf_domain = None
    if spf is not None and spf.result is AuthStatus.PASS:
        mailfrom = spf.props.get("smtp.mailfrom", "").rpartition("@")[2]
        spf_domain = normalize_domain(mailfrom or spf.props.get("smtp.helo", ""))
    passing = (r.props.get("header.d", "") for r in dkim if r.result is AuthStatus.PASS)
    domains = tuple(dict.fromkeys(d for d in map(normalize_domain, passing) if d))
    return spf_domain, domains


def aligned(from_domain: str, other: str, mode: Alignment, org_domains: Mapping[str, str]) -> bool:
    """Identifier alignment (RFC 9989 §4.4.1, §4.4.2): strict = same name, relaxed = same org."""
    if from_domain == other:
        return True
    if mode is Alignment.STRICT:
        return False
    from_org, other_org = org_domains.get(from_domain), org_domains.get(other)
    return from_org is not None and from_org == other_org


def select_policy(lookup: DmarcLookup) -> Policy | None:
    """p= for the domain that published it, else np= (non-existent) or sp= (RFC 9989 §4.7)."""
    record = lookup.record
    if record is None:
        return None
    if lookup.policy_domain == lookup.from_domain:
        return record.policy
    if not lookup.author_exists and record.nonexistent_policy is not None:
        return record.nonexistent_policy
    return record.subdomain_policy or record.policy


def evaluate(
    lookup: DmarcLookup, spf_domain: str | None, dkim_domains: Sequence[str]
) -> DmarcResult:
    """The DMARC result from fetched records and authenticated domains; no I/O."""
    record = lookup.record
    if record is None:
        reason = "no DMARC policy record"
        return DmarcResult(
            AuthStatus.NONE, lookup.from_domain, reason, org_domain=lookup.org_domain
        )
    policy = select_policy(lookup)
    orgs = {lookup.from_domain: lookup.org_domain, **lookup.org_domains}
    dkim_ok = tuple(d for d in dkim_domains if aligned(lookup.from_domain, d, record.adkim, orgs))
    spf_ok = spf_domain
    if spf_ok is not None and not aligned(lookup.from_domain, spf_ok, record.aspf, orgs):
        spf_ok = None
    applied = None
    if dkim_ok or spf_ok:
        status = AuthStatus.PASS
        reason = f"aligned DKIM d={dkim_ok[0]}" if dkim_ok else f"aligned SPF {spf_ok}"
    else:
        status = AuthStatus.FAIL
        reason = f"no aligned SPF or DKIM pass; {_describe(record, policy)}"
        applied = policy.downgraded() if policy is not None and record.testing else policy
    return DmarcResult(
        status,
        lookup.from_domain,
        reason,
        policy=policy,
        applied_policy=applied,
        testing=record.testing,
        policy_domain=lookup.policy_domain,
        org_domain=lookup.org_domain,
        aligned_dkim=dkim_ok,
        aligned_spf=spf_ok,
    )


def _describe(record: DmarcRecord, policy: Policy | None) -> str:
    text = f"policy {policy}"
    return text + " (t=y: testing, one step milder)" if record.testing else text


async def lookup_dmarc(
    resolver: Resolver,
    from_domain: str,
    candidates: Sequence[str] = (),
    mode: OrgDomainMode | str = OrgDomainMode.TREEWALK,
) -> DmarcLookup:
    """Fetch the policy record and the Organizational Domains ``evaluate`` needs.

    ``from_domain`` must be normalised (``normalize_domain``); ``candidates`` are the
    authenticated SPF/DKIM domains. Raises ``DnsError``.
    """
    memo: StepCache = {}
    if OrgDomainMode(mode) is OrgDomainMode.TREEWALK:
        steps = await tree_walk(resolver, from_domain, memo)
        org = organizational_domain(from_domain, steps)
    else:
        org = psl_organizational_domain(from_domain)
        steps = await _psl_steps(resolver, from_domain, org)
    found = policy_step(steps)
    org_domains = await _candidate_orgs(
        resolver, from_domain, org, candidates, mode=mode, memo=memo
    )
    exists = True
    if found and found.record and found.domain != from_domain and found.record.nonexistent_policy:
        exists = await domain_exists(resolver, from_domain)
    return DmarcLookup(
        from_domain=from_domain,
        record=found.record if found else None,
        policy_domain=found.domain if found else None,
        org_domain=org,
        org_domains=org_domains,
        author_exists=exists,
        notes=tuple(
            f"_dmarc.{s.domain}: {s.note}" for s in steps if s.note != "no record" and s.note
        ),
    )


async def _psl_steps(resolver: Resolver, domain: str, org: str) -> tuple[WalkStep, ...]:
    """RFC 7489 §6.6.3: the From domain, then its PSL Organizational Domain."""
    first = await fetch_step(resolver, domain)
    if first.record is not None or org == domain:
        return (first,)
    return (first, await fetch_step(resolver, org))


async def _candidate_orgs(
    resolver: Resolver,
    from_domain: str,
    from_org: str,
    candidates: Sequence[str],
    *,
    mode: OrgDomainMode | str,
    memo: StepCache,
) -> dict[str, str]:
    """Organizational Domains of the SPF/DKIM domains that could align in relaxed mode."""
    if from_domain in candidates:
        return {}  # an identical identifier aligns in every mode: no more lookups needed
    orgs: dict[str, str] = {}
    for domain in dict.fromkeys(candidates):
        # Its org domain is itself or a parent, so it can only equal from_org below from_org.
        if domain != from_org and not domain.endswith("." + from_org):
            continue
        if OrgDomainMode(mode) is OrgDomainMode.PSL:
            orgs[domain] = psl_organizational_domain(domain)
        else:
            orgs[domain] = organizational_domain(domain, await tree_walk(resolver, domain, memo))
    return orgs


async def domain_exists(resolver: Resolver, domain: str) -> bool:
    """False when A, AAAA and MX all give NXDOMAIN or NODATA (RFC 9989 §3.2.8, RFC 9091)."""
    for rdtype in ("A", "AAAA", "MX"):
        answer = await resolver.query(domain, rdtype)
        if answer.nxdomain:
            return False
        if answer.records:
            return True
    return False


async def check_dmarc(
    resolver: Resolver,
    from_domain: str,
    spf: AuthResult | None,
    dkim: Sequence[AuthResult],
    *,
    org_domain_mode: OrgDomainMode | str = OrgDomainMode.TREEWALK,
) -> DmarcResult:
    """DMARC for one message: ``from_domain`` is the RFC5322.From domain."""
    domain = normalize_domain(from_domain)
    if domain is None:
        reason = f"RFC5322.From domain {from_domain!r} is not a valid domain name"
        return DmarcResult(AuthStatus.PERMERROR, from_domain, reason)
    spf_domain, dkim_domains = authenticated_domains(spf, dkim)
    candidates = [d for d in (spf_domain, *dkim_domains) if d]
    try:
        lookup = await lookup_dmarc(resolver, domain, candidates, org_domain_mode)
    except DnsTimeout:
        return DmarcResult(AuthStatus.TEMPERROR, domain, "DNS timeout during DMARC lookups")
    except DnsError as exc:
        return DmarcResult(AuthStatus.TEMPERROR, domain, f"DNS error during DMARC lookups: {exc}")
    return evaluate(lookup, spf_domain, dkim_domains)

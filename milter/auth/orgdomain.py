"""DMARC record discovery and Organizational Domains: the RFC 9989 DNS Tree Walk, or PSL.

``walk_names``, ``organizational_domain`` and ``policy_step`` are pure; ``tree_walk`` and
``fetch_step`` do the lookups through our ``Resolver``. ``psl_organizational_domain`` is the
RFC 7489 way, kept for comparison; it reads only the Public Suffix List snapshot bundled
with tldextract and never downloads one.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import tldextract

from milter.auth.dmarc_record import (
    DmarcRecord,
    PsdFlag,
    RecordError,
    is_dmarc_record,
    parse_record,
)
from milter.dns.resolver import DnsError, Resolver

__all__ = [
    "MAX_TREE_WALK_QUERIES",
    "OrgDomainMode",
    "StepCache",
    "WalkStep",
    "fetch_step",
    "organizational_domain",
    "policy_step",
    "psl_organizational_domain",
    "tree_walk",
    "walk_names",
]

MAX_TREE_WALK_QUERIES = 8  # RFC 9989 §4.10.1: a tree walk queries at most eight names


class OrgDomainMode(StrEnum):
    """How Organizational Domains are found: ``treewalk`` (RFC 9989) or ``psl`` (RFC 7489)."""

    TREEWALK = "treewalk"
    PSL = "psl"


@dataclass(frozen=True, slots=True)
class WalkStep:
    """What ``_dmarc.<domain>`` held: one valid record, or None with a note saying why."""

    domain: str
    record: DmarcRecord | None
    note: str = ""
    failed: bool = False  # the query failed (SERVFAIL, REFUSED, timeout): unknown, not absent


StepCache = MutableMapping[str, WalkStep]  # per-message memo: domain → step


def walk_names(domain: str) -> tuple[str, ...]:
    """The names a tree walk queries, in order (RFC 9989 §4.10.1 steps 4, 5 and 8).

    The domain itself first; then, for names of 8 labels or more, straight to its last 7
    labels; then one label less each time down to the top-level domain: at most 8 names.
    """
    labels = domain.split(".")
    below = min(len(labels) - 1, MAX_TREE_WALK_QUERIES - 1)
    return (domain, *(".".join(labels[-count:]) for count in range(below, 0, -1)))


async def fetch_step(resolver: Resolver, domain: str) -> WalkStep:
    """Query ``_dmarc.<domain>`` TXT; ``DnsError`` propagates (the caller's temperror)."""
    answer = await resolver.query(f"_dmarc.{domain}", "TXT")
    # RFC 9989 §4.10.1 step 2: drop non-DMARC records; several DMARC records → all discarded
    found = [text for text in answer.records if is_dmarc_record(text)]
    if not found:
        return WalkStep(domain, None, "no record")
    if len(found) > 1:
        return WalkStep(domain, None, f"{len(found)} DMARC records, all discarded")
    try:
        return WalkStep(domain, parse_record(found[0]))
    except RecordError as exc:
        return WalkStep(domain, None, f"invalid record: {exc}")


async def tree_walk(
    resolver: Resolver, domain: str, steps: StepCache | None = None
) -> tuple[WalkStep, ...]:
    """Walk up from ``domain``; stop after a record with psd=y or psd=n (RFC 9989 §4.10.1).

    ``steps`` memoises lookups, so several walks for one message share their queries.
    A failed query (``DnsError``) at or before the first name holding a valid record
    propagates (the caller's temperror: the answer could change the policy); above it, the
    name is taken as holding no record. RFC 9989 leaves DNS errors to the receiver; this
    choice can only narrow the Organizational Domain, so it can turn an alignment pass into
    a fail but never a fail into a pass (docs/authentication.md).
    """
    memo: StepCache = {} if steps is None else steps
    walked: list[WalkStep] = []
    for name in walk_names(domain):
        found = any(s.record is not None for s in walked)
        if name not in memo:
            try:
                memo[name] = await fetch_step(resolver, name)
            except DnsError as exc:
                if not found:
                    raise
                memo[name] = WalkStep(name, None, f"query failed ({exc}), taken as no record", True)
        step = memo[name]
        if step.failed and not found:
            raise DnsError(f"_dmarc.{name}: {step.note}")
        walked.append(step)
        if step.record is not None and step.record.psd in (PsdFlag.YES, PsdFlag.NO):
            break
    return tuple(walked)


def policy_step(steps: tuple[WalkStep, ...]) -> WalkStep | None:
    """The DMARC policy record is the first valid record the walk met (RFC 9989 §4.10.1)."""
    return next((step for step in steps if step.record is not None), None)


def organizational_domain(domain: str, steps: tuple[WalkStep, ...]) -> str:
    """The Organizational Domain of ``domain`` from its tree walk (RFC 9989 §4.10.2).

    A record with psd=n marks its own domain; psd=y (other than at ``domain`` itself) marks
    the name one label below it; otherwise the record with the fewest labels wins; with no
    record at all, ``domain`` is its own Organizational Domain.
    """
    found = [(step.domain, step.record) for step in steps if step.record is not None]
    if not found:
        return domain
    last_domain, last_record = found[-1]  # the walk goes upwards: fewest labels last
    if last_record.psd is PsdFlag.YES and last_domain != domain:
        depth = len(last_domain.split(".")) + 1
        return ".".join(domain.split(".")[-depth:])
    return last_domain


@cache
def _psl() -> tldextract.TLDExtract:
    # No URLs and no cache directory: only the snapshot shipped inside tldextract is read.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def psl_organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (the domain itself if it is a suffix)."""
    parts = _psl()(domain)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}".lower()
    return domain

"""Where every link really goes: extraction, redirect unwrapping (from the URL alone,
never fetched), lookalikes of protected brands, anchor text showing another domain,
and a From domain that is itself a lookalike."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from milter.checks.base import CheckContext, Outcome
from milter.links.brands import BrandDomains
from milter.links.extract import Link, LinkFlag, extract_links
from milter.links.lookalike import BrandIndex, Lookalike
from milter.links.redirect import unwrap
from milter.links.url import parse_url
from milter.model.findings import Finding, Severity
from milter.policy.model import Policy

NAME = "links"
TRICKS = (LinkFlag.USERINFO, LinkFlag.BIDI, LinkFlag.DATA_URI, LinkFlag.IP_OBFUSCATED)
MAX_FINDINGS = 10  # per code: enough to explain, bounded for hostile messages


@lru_cache(maxsize=8)
def brand_index(policy: Policy) -> BrandIndex:
    """The lookalike index of the policy's brands (built once per loaded policy)."""
    return BrandIndex.build(
        BrandDomains(bid, b.name, (*b.domains, *b.sending_domains), b.tokens)
        for bid, b in policy.brands.items()
    )


class LinksCheck:
    """LINK_LOOKALIKE, LINK_TEXT_MISMATCH, LINK_TRICK and FROM_LOOKALIKE findings."""

    name = NAME

    async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
        """Findings for suspicious links and a lookalike From domain."""
        index = brand_index(ctx.policy)
        limit = ctx.policy.document.limits.max_links
        links = extract_links(ctx.mime.texts, ctx.mime.htmls, max_links=limit)
        found: list[Finding] = _from_lookalike(ctx, index)
        for link in links:
            found += _judge(ctx, index, link)
        return _bounded(found)


def _judge(ctx: CheckContext, index: BrandIndex, link: Link) -> list[Finding]:
    found: list[Finding] = []
    final = unwrap(link.target) if link.host else None
    final_host = parse_url(final.url).host if final and len(final.chain) > 1 else ""
    for host, via in ((link.host, ""), (final_host, " (behind a redirector)")):
        hit = index.classify(host) if host else None
        if hit is not None and hit.is_lookalike:
            found.append(_lookalike(ctx, link, hit, via))
    if LinkFlag.ANCHOR_MISMATCH in link.flags:
        shown = index.classify(link.anchor_host) if link.anchor_host else None
        real = final_host or link.host
        if shown is not None and not shown.is_lookalike and _not_brand(index, real, shown):
            found.append(_mismatch(link, shown, real))
    tricks = sorted(str(f) for f in link.flags if f in TRICKS)
    if tricks:
        found.append(
            Finding(
                "LINK_TRICK",
                NAME,
                Severity.LOW,
                f"link {link.url[:120]} uses {', '.join(tricks)}",
                ctx.claim.brand if ctx.claim else None,
                {"url": link.url[:300], "tricks": ", ".join(tricks)},
            )
        )
    return found


def _not_brand(index: BrandIndex, host: str, shown: Lookalike) -> bool:
    hit = index.classify(host) if host else None
    return hit is None or hit.brand_id != shown.brand_id or hit.is_lookalike


def _lookalike(ctx: CheckContext, link: Link, hit: Lookalike, via: str) -> Finding:
    claimed = ctx.claim is not None
    return Finding(
        "LINK_LOOKALIKE",
        NAME,
        Severity.CRITICAL if claimed else Severity.HIGH,
        f"link to {hit.evidence}{via}",
        hit.brand_id,
        {
            "url": link.url[:300],
            "host": hit.host,
            "host_ascii": hit.host_ascii,
            "imitates": hit.official,
            "technique": hit.technique,
        },
    )


def _mismatch(link: Link, shown: Lookalike, real: str) -> Finding:
    return Finding(
        "LINK_TEXT_MISMATCH",
        NAME,
        Severity.HIGH,
        f"link text shows {link.anchor_host} ({shown.brand_name}) but goes to {real}",
        shown.brand_id,
        {"shown": link.anchor_host, "href": link.url[:300], "real_host": real},
    )


def _from_lookalike(ctx: CheckContext, index: BrandIndex) -> list[Finding]:
    found = []
    for address in ctx.mime.from_addresses:
        hit = index.classify(address.domain) if address.domain else None
        if hit is not None and hit.is_lookalike:
            found.append(
                Finding(
                    "FROM_LOOKALIKE",
                    NAME,
                    Severity.CRITICAL,
                    f"From domain {hit.evidence}",
                    hit.brand_id,
                    {
                        "from_domain": address.domain,
                        "imitates": hit.official,
                        "technique": hit.technique,
                    },
                )
            )
    return found


def _bounded(found: list[Finding]) -> list[Finding]:
    counts: dict[str, int] = {}
    kept = []
    for finding in found:
        counts[finding.code] = counts.get(finding.code, 0) + 1
        if counts[finding.code] <= MAX_FINDINGS:
            kept.append(finding)
    return kept

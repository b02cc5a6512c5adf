"""The protected brands of a policy as one lookalike index: the only brand registry.

The engine (links, claim and sender checks), ``tocsin lookalike`` and the benchmark all
ask this index, so "is this domain official for a brand" and "which brand does it imitate"
have one answer, computed from the policy's ``brands`` (shipped defaults plus the admin's).
"""

from __future__ import annotations

from functools import lru_cache

from milter.links.brands import BrandDomains
from milter.links.lookalike import BrandIndex
from milter.policy.model import Policy


def policy_brands(policy: Policy) -> tuple[BrandDomains, ...]:
    """The policy's brands as index entries; ``sending_domains`` are official too."""
    return tuple(
        BrandDomains(bid, b.name, tuple(dict.fromkeys((*b.domains, *b.sending_domains))), b.tokens)
        for bid, b in policy.brands.items()
    )


@lru_cache(maxsize=8)
def brand_index(policy: Policy) -> BrandIndex:
    """The lookalike index of the policy's brands, built once per loaded policy."""
    return BrandIndex.build(policy_brands(policy))


def official_brand(domain: str, policy: Policy) -> str | None:
    """Id of the brand owning ``domain`` (the most specific official domain), or None."""
    owners = brand_index(policy).official_brands(domain)
    return owners[0] if owners else None


def is_official(domain: str, brand_id: str, policy: Policy) -> bool:
    """True when ``domain`` is one of brand ``brand_id``'s official domains or under one."""
    return brand_id in brand_index(policy).official_brands(domain)

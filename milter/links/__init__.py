"""Pure link and domain analysis: extraction, redirect unwrapping, brand lookalikes.

No I/O and no network: URLs are never fetched, the public-suffix list is the bundled one.
"""

from milter.links.brands import BrandDomains
from milter.links.extract import Link, LinkFlag, LinkSet, LinkSource, extract_links
from milter.links.lookalike import TECHNIQUES, BrandIndex, Lookalike
from milter.links.redirect import Unwrapped, unwrap

__all__ = [
    "TECHNIQUES",
    "BrandDomains",
    "BrandIndex",
    "Link",
    "LinkFlag",
    "LinkSet",
    "LinkSource",
    "Lookalike",
    "Unwrapped",
    "extract_links",
    "unwrap",
]

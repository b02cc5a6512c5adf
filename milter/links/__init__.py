"""Pure link and domain analysis: extraction, redirect unwrapping, brand lookalikes.

No I/O and no network: URLs are never fetched, the public-suffix list is the bundled one.
"""

from milter.links.extract import Link, LinkFlag, LinkSet, LinkSource, extract_links

__all__ = ["Link", "LinkFlag", "LinkSet", "LinkSource", "extract_links"]

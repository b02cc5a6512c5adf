"""A message's body links, extracted once per scan for every check that reads them.

The brand claim (the hosts a body-only claim links to) and the links check both read the
body's links; extracting them is the largest single cost of a newsletter's scan, so it is
done once, at the links check's cap, and the claim reads the first links of it.
"""

from __future__ import annotations

from milter.links.extract import LinkSet, extract_links
from milter.mime.parse import MimeView


class BodyLinks:
    """The links of one message's text and HTML parts, extracted on first demand."""

    __slots__ = ("_cap", "_found", "_mime")

    def __init__(self, mime: MimeView) -> None:
        self._mime = mime
        self._found: LinkSet | None = None
        self._cap = 0

    def get(self, max_links: int) -> LinkSet:
        """``extract_links(…, max_links)`` of the message: extracted once at the largest
        cap asked; a smaller cap gets the first ``max_links`` of those (a link already seen
        keeps its place, so the first ones are the same links)."""
        found = self._found
        if found is None or (max_links > self._cap and found.truncated):
            found = extract_links(self._mime.texts, self._mime.htmls, max_links=max_links)
            self._found, self._cap = found, max_links
        if len(found) <= max_links:
            return found
        return LinkSet(found.links[:max_links], truncated=True)

"""A message's body links, extracted once per scan for every check that reads them.

The brand claim (the hosts a body-only claim links to, first MAX_BODY_LINKS of them) and
the links check (up to the policy's max_links, under the scan's work budget) both read the
body's links; extracting them is the largest single cost of a newsletter's scan. The
claim's extraction is read again by the links check when it found every link (nearly all
mail: fewer than 200 links).
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
        """``extract_links(…, max_links)`` of the message. An extraction already made is
        read again when it is the same cap, or a smaller cap's that was not truncated
        (it then found every link: a larger cap finds the same). Otherwise the links are
        extracted again at this cap, which a smaller cap's leading links are not (a kept
        link takes a later occurrence's anchor; the work budget follows the cap)."""
        found = self._found
        if found is not None and (
            max_links == self._cap or (max_links > self._cap and not found.truncated)
        ):
            return found
        found = extract_links(self._mime.texts, self._mime.htmls, max_links=max_links)
        self._found, self._cap = found, max_links
        return found

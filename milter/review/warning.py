"""The page redirect-mode links lead to: where the link really goes, why Tocsin rewrote it,
and a "continue" link the reader must click (``GET /link?u=…&r=…&e=…&c=…&s=…``).

No login: the recipients who click are not review users. Nothing is fetched on the
server, and the page never redirects by itself: a valid link gets a page with the
destination (host in Unicode and ASCII forms, full URL defanged), the reasons in French
and English, and a plain ``<a>`` to the original; an unsigned, tampered or expired link
gets a 4xx page that links nowhere (an expired one still shows where it went, defanged).
Signatures are checked by :func:`milter.actions.redirect.verify_link` with the keys of
the policy (``ReviewConfig.link_keys``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from milter.actions.defang import defang_links_text
from milter.actions.redirect import LinkProblem, LinkRefused, LinkToken, verify_link
from milter.actions.targets import LinkTargets
from milter.links.redirect import unwrap
from milter.review.meanings import meaning
from milter.text.url import LinkFlag, bracket_dots, parse_url

if TYPE_CHECKING:
    from milter.review.app import ReviewState

PATH = "/link"
FOLLOWABLE = frozenset({"http", "https"})
EVERY_URL = LinkTargets().with_every_link()  # the URL and any URL written inside it
STATUS = {LinkProblem.INVALID: 400, LinkProblem.EXPIRED: 410, LinkProblem.WRONG_RECIPIENT: 403}
log = logging.getLogger("tocsin.review.link")


@dataclass(frozen=True, slots=True)
class Destination:
    """What the page shows of a link: never a clickable form of it but ``follow``."""

    host: str  # where it ends (behind any redirector), Unicode form, defanged
    host_ascii: str  # ASCII (punycode) form, defanged; "" when the same as ``host``
    via: tuple[str, ...]  # redirectors it passes through first (hosts, defanged)
    url: str  # the whole URL, defanged
    follow: str  # the original URL for the "continue" link; "" when not offered
    reasons: tuple[tuple[str, str, str], ...]  # (code, French, English)
    recipients: tuple[str, ...]
    expires: str  # "YYYY-MM-DD HH:MM UTC"


def destination(token: LinkToken) -> Destination:
    """The page's view of a verified (or authentic but expired) token."""
    parsed = parse_url(token.url)
    chain = unwrap(token.url).chain  # read from the URL text only, never fetched
    final = parse_url(chain[-1])
    host, ascii_host = bracket_dots(final.host), bracket_dots(final.host_ascii)
    via = tuple(dict.fromkeys(bracket_dots(parse_url(u).host) for u in chain[:-1]))
    followable = (
        parsed.scheme in FOLLOWABLE and bool(parsed.host) and LinkFlag.INVALID not in parsed.flags
    )
    reasons = tuple((code, meaning(code, "fr"), meaning(code, "en")) for code in token.reasons)
    when = datetime.fromtimestamp(token.expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Destination(
        host,
        "" if ascii_host == host else ascii_host,
        via,
        defang_links_text(token.url, EVERY_URL),
        token.url if followable else "",
        reasons,
        token.recipients,
        when,
    )


def _state(request: Request) -> ReviewState:
    state: ReviewState = request.app.state.review
    return state


async def link_warning(request: Request) -> Response:
    """GET /link: the warning page for one signed link (no session, no redirect)."""
    state = _state(request)
    template = state.templates.get_template("link.html")
    query = {name: request.query_params.get(name, "") for name in ("u", "r", "e", "c", "s")}
    try:
        token = verify_link(query, state.config.link_keys)
    except LinkRefused as refused:
        shown = destination(refused.token) if refused.token is not None else None
        log.info("warning page refused a link: %s", refused.problem)
        html = template.render(problem=str(refused.problem), dest=shown)
        return HTMLResponse(html, STATUS[refused.problem], {"x-robots-tag": "noindex"})
    dest = destination(token)
    log.info("warning page shown for a link to %s", dest.host)
    html = template.render(problem="", dest=dest)
    return HTMLResponse(html, 200, {"x-robots-tag": "noindex"})

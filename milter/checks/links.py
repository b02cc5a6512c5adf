"""Where every link really goes: extraction, redirect unwrapping (from the URL alone,
never fetched), lookalikes of protected brands, anchor text showing another domain,
and a From domain that is itself a lookalike.

Severity depends on the message around the link (docs/lookalike.md, "Severity"): a
lookalike in a message that claims a brand is critical, one in a newsletter that names
no brand is medium. Each link finding carries its link (``Finding.link``, the whole URL and
the host it leads to): that, not the evidence text, is what the link rewriter acts on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from milter.checks.base import CheckContext, Outcome
from milter.checks.claim import ClaimVia, named_brand
from milter.links.extract import Link, LinkFlag
from milter.links.lookalike import BrandIndex, Lookalike
from milter.links.redirect import may_carry, unwrap, unwrap_once
from milter.mime.parse import MimeView
from milter.model.codes import Code
from milter.model.findings import Finding, LinkRef, LinkScope, Severity
from milter.model.limits import LimitHit
from milter.text.idna import to_ascii as host_to_ascii

NAME = "links"
TRICKS = (LinkFlag.USERINFO, LinkFlag.BIDI, LinkFlag.DATA_URI, LinkFlag.IP_OBFUSCATED)
MAX_FINDINGS = 10  # per code: enough to explain, bounded for hostile messages
LINK_CODES = (Code.LINK_LOOKALIKE, Code.LINK_TEXT_MISMATCH, Code.LINK_TRICK)  # of one link
BULK_PRECEDENCE = ("bulk", "list", "junk")


class Context(StrEnum):
    """What the message around a suspicious link says (evidence key ``context``)."""

    BRAND_OWN_MAIL = "brand-own-mail"  # From is the shown brand's own domain
    BRAND_CLAIMED = "brand-claimed"  # the message claims a protected brand
    BRAND_NAMED = "brand-named"  # no claim, a brand named in subject or text (lookalikes)
    BULK = "bulk"  # newsletter or list mail naming no brand
    PLAIN = "plain"  # none of the above


LOOKALIKE_SEVERITY = {
    Context.BRAND_CLAIMED: Severity.CRITICAL,
    Context.BRAND_NAMED: Severity.HIGH,
    Context.BULK: Severity.MEDIUM,
    Context.PLAIN: Severity.HIGH,
}
MISMATCH_SEVERITY = {
    Context.BRAND_OWN_MAIL: Severity.INFO,
    Context.BRAND_CLAIMED: Severity.CRITICAL,
    Context.BULK: Severity.MEDIUM,
    Context.PLAIN: Severity.HIGH,
}


class LinksCheck:
    """LINK_LOOKALIKE, LINK_TEXT_MISMATCH, LINK_TRICK and FROM_LOOKALIKE findings."""

    name = NAME
    awaits_io = False  # CPU only: the engine runs it inline

    async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
        """Findings for suspicious links and a lookalike From domain."""
        index = ctx.compiled.brand_index
        limit = ctx.policy.document.limits.max_links
        links = ctx.links(limit)
        judge = _Judge(ctx, index)
        found: list[Finding] = _from_lookalike(ctx, index)
        found += judge.links(links)
        if links.truncated:  # the links past the cap were not judged: say so
            hit = LimitHit("links", "message", f"more than {limit} links, the first judged")
            found.append(hit.finding(NAME))
        return _bounded(found)


def is_bulk(mime: MimeView) -> bool:
    """True for newsletters and list mail (List-Unsubscribe, List-Id, Precedence: bulk)."""
    if mime.header("List-Unsubscribe") is not None or mime.header("List-Id") is not None:
        return True
    precedence = (mime.header("Precedence") or "").strip().lower()
    return precedence in BULK_PRECEDENCE


@dataclass
class _Judge:
    """Judges the links of one message; the message context is computed once, lazily."""

    ctx: CheckContext
    index: BrandIndex
    _context: Context | None = None

    def context(self) -> Context:
        """The message around a lookalike link: claimed, named, bulk or plain."""
        if self._context is None:
            if self.ctx.claim is not None:
                self._context = Context.BRAND_CLAIMED
            elif named_brand(self.ctx.mime.all_text, self.ctx.policy) is not None:
                self._context = Context.BRAND_NAMED
            else:
                self._context = Context.BULK if is_bulk(self.ctx.mime) else Context.PLAIN
        return self._context

    def mismatch_context(self, shown: Lookalike) -> Context:
        """Like :meth:`context`, but the brand's own mail is its own case, and "named"
        is left out: the anchor text showing the brand's domain names it by definition."""
        claim = self.ctx.claim
        if claim is not None:
            own = claim.via is ClaimVia.FROM_DOMAIN and claim.brand == shown.brand_id
            return Context.BRAND_OWN_MAIL if own else Context.BRAND_CLAIMED
        return Context.BULK if is_bulk(self.ctx.mime) else Context.PLAIN

    def links(self, links: Iterable[Link]) -> list[Finding]:
        """:meth:`link`'s findings for each link, in order, the first
        :data:`MAX_FINDINGS` of each code (what :meth:`LinksCheck.run` keeps: those past
        them are not made, and once every code has them the remaining links are not
        judged). A link with no flag whose host is no lookalike and which carries no
        other URL (most links) has none: it is passed over here, with the look-ups
        :meth:`link` begins with (the lookalike answer once per host of the message: a
        newsletter's links share a few hosts)."""
        found: list[Finding] = []
        classify, judge = self.index.classify, self.link
        plain: dict[str, bool] = {}  # host -> no lookalike (as many as the links, at most)
        room = dict.fromkeys(LINK_CODES, MAX_FINDINGS)  # findings of each code still kept
        for link in links:
            if not link.flags:
                host = link.host
                if not host:
                    continue
                no_lookalike = plain.get(host)
                if no_lookalike is None:
                    hit = classify(host)
                    plain[host] = no_lookalike = hit is None or not hit.is_lookalike
                if no_lookalike and not may_carry(link):
                    continue
            made = judge(link, room)
            if made:
                found += made
                if not any(room.values()):
                    break  # every code has its findings: the rest would make none
        return found

    def link(self, link: Link, room: dict[Code, int] | None = None) -> Sequence[Finding]:
        """Findings for one link: lookalike hosts (as written and unwrapped), text
        showing a brand domain while going elsewhere, and link tricks. Most links have
        none: a host that is no lookalike, no URL inside, no flag; they cost a cached
        look-up and :func:`~milter.links.redirect.may_carry` (no reading is built).
        ``room``: how many more findings of each code are wanted (counted down here);
        a finding of a code with none left is not made (a lookalike newsletter's every
        link would make one, ten are kept)."""
        host, flags = link.host, link.flags
        final_host = ""
        if host:
            hit = self.index.classify(host)
            if may_carry(link):  # most links carry no other URL
                parsed = link.parsed
                if unwrap_once(link.target, parsed) is not None:
                    final = unwrap(link.target, parsed=parsed)
                    final_host = final.final.host if len(final.chain) > 1 else ""
            elif not flags and (hit is None or not hit.is_lookalike):
                return ()
        else:
            if not flags:
                return ()
            hit = None
        found: list[Finding] = []
        if hit is not None and hit.is_lookalike and _wanted(room, Code.LINK_LOOKALIKE):
            found.append(self._lookalike(link, hit, ""))
        hit = self.index.classify(final_host) if final_host else None
        if hit is not None and hit.is_lookalike and _wanted(room, Code.LINK_LOOKALIKE):
            found.append(self._lookalike(link, hit, " (behind a redirector)"))
        if flags and LinkFlag.ANCHOR_MISMATCH in flags:  # most links: no flag
            shown = self.index.classify(link.anchor_host) if link.anchor_host else None
            real = final_host or host
            if (
                shown is not None
                and not shown.is_lookalike
                and _not_brand(self.index, real, shown)
                and _wanted(room, Code.LINK_TEXT_MISMATCH)
            ):
                found.append(self._mismatch(link, shown, real))
        tricks = sorted(str(f) for f in flags if f in TRICKS) if flags else None
        if tricks and _wanted(room, Code.LINK_TRICK):
            found.append(self._trick(link, tricks))
        return found

    def _lookalike(self, link: Link, hit: Lookalike, via: str) -> Finding:
        context = self.context()
        return Finding(
            Code.LINK_LOOKALIKE,
            NAME,
            LOOKALIKE_SEVERITY[context],
            f"link to {hit.evidence}{via}",
            hit.brand_id,
            {
                "url": link.url[:300],
                "host": hit.host,
                "host_ascii": hit.host_ascii,
                "imitates": hit.official,
                "technique": hit.technique,
                "context": context,
            },
            LinkRef(link.url, hit.host, hit.host_ascii),
        )

    def _mismatch(self, link: Link, shown: Lookalike, real: str) -> Finding:
        context = self.mismatch_context(shown)
        real_ascii = host_to_ascii(real)
        real_shown = real if real == real_ascii else f"{real} ({real_ascii})"
        return Finding(
            Code.LINK_TEXT_MISMATCH,
            NAME,
            MISMATCH_SEVERITY[context],
            f"link text shows {_both(shown.host, shown.host_ascii)} ({shown.brand_name}) "
            f"but goes to {real_shown}",
            shown.brand_id,
            {
                "shown": link.anchor_host,
                "shown_ascii": shown.host_ascii,
                "href": link.url[:300],
                "real_host": real,
                "real_host_ascii": real_ascii,
                "context": context,
            },
            LinkRef(link.url, real, real_ascii),
        )

    def _trick(self, link: Link, tricks: list[str]) -> Finding:
        claim = self.ctx.claim
        return Finding(
            Code.LINK_TRICK,
            NAME,
            Severity.LOW,
            f"link {link.url[:120]} uses {', '.join(tricks)}",
            claim.brand if claim else None,
            {"url": link.url[:300], "tricks": ", ".join(tricks)},
            LinkRef(link.url, link.host, host_to_ascii(link.host), LinkScope.URL),
        )


def _wanted(room: dict[Code, int] | None, code: Code) -> bool:
    """One more finding of ``code`` is wanted (``room`` counted down; None: always)."""
    if room is None:
        return True
    left = room[code]
    if not left:
        return False
    room[code] = left - 1
    return True


def _both(host: str, host_ascii: str) -> str:
    return host if host == host_ascii else f"{host} ({host_ascii})"


def _not_brand(index: BrandIndex, host: str, shown: Lookalike) -> bool:
    hit = index.classify(host) if host else None
    return hit is None or hit.brand_id != shown.brand_id or hit.is_lookalike


def _from_lookalike(ctx: CheckContext, index: BrandIndex) -> list[Finding]:
    found = []
    for address in ctx.mime.from_addresses:
        hit = index.classify(address.domain) if address.domain else None
        if hit is not None and hit.is_lookalike:
            found.append(
                Finding(
                    Code.FROM_LOOKALIKE,
                    NAME,
                    Severity.CRITICAL,
                    f"From domain {hit.evidence}",
                    hit.brand_id,
                    {
                        "from_domain": address.domain,
                        "host": hit.host,
                        "host_ascii": hit.host_ascii,
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

"""Which protected brand a message claims to come from, and how it claims it.

Signals, strongest first: the From domain is the brand's own (a claim to be proven by
authentication), the From or Sender display name names the brand, the From **local part**
names it (``mon.compte.formation@…``, ``ameli-info@…``), the subject names it, and — a
claim of lower weight — only the **body** addresses the reader as the brand's user ("votre
compte personnel de formation", "votre espace ameli") with a call to action and links to
hosts that are not the brand's. A brand merely mentioned in a body is not a claim
(newsletters quote brands all the time). A lure may name a second brand (CPF spent through
FranceConnect credentials): ``BrandClaim.others`` lists the other brands named in the
display names, the subject or the body.

Which domains are a brand's own is answered by the policy's one brand index
(:mod:`milter.checks.compiled`), the same that judges lookalikes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from milter.checks.body_links import BodyLinks
from milter.checks.compiled import CompiledPolicy, compiled, name_skeleton
from milter.mime.headers import Address
from milter.mime.parse import MimeView
from milter.policy.model import Policy
from milter.text.confusables import phrase_key

CALL_TO_ACTION = "call_to_action"  # phrase set: "cliquez", "connectez-vous", "log in" …
MAX_BODY_LINKS = 200


class ClaimVia(StrEnum):
    """How the brand is claimed."""

    FROM_DOMAIN = "from-domain"
    DISPLAY_NAME = "display-name"
    SENDER = "sender"
    LOCAL_PART = "local-part"
    SUBJECT = "subject"
    BODY = "body"


@dataclass(frozen=True, slots=True)
class BrandClaim:
    """The brand a message claims, the signal, and the text that carried it.

    ``others`` are further brands the message names (display names, subject, body);
    ``link_hosts`` are the hosts its links lead to that are not the brand's (computed for
    the weaker local-part and body claims, whose weight depends on them).
    """

    brand: str
    via: ClaimVia
    evidence: str
    from_domain: str
    others: tuple[str, ...] = ()
    link_hosts: tuple[str, ...] = ()


def named_brand(text: str, policy: Policy) -> tuple[str, str] | None:
    """(brand id, matched name) when ``text`` names a brand as whole words."""
    if not text:
        return None
    for key, brand_id in compiled(policy).names_in(phrase_key(text)):
        return brand_id, key.strip()
    return None


def named_brand_visually(text: str, policy: Policy) -> tuple[str, str] | None:
    """Like :func:`named_brand`, and also when the name only *looks* like a brand's once
    confusable letters are merged ("Arneli" reads as ameli): for names and addresses,
    where a reader sees glyphs, not spellings."""
    hit = named_brand(text, policy)
    if hit is not None or not text:
        return hit
    for key, brand_id in compiled(policy).skeletons.found(name_skeleton(text)):
        return brand_id, key.strip()
    return None


def named_brands(text: str, policy: Policy) -> list[str]:
    """Every brand ``text`` names as whole words, longest name first, each once."""
    if not text:
        return []
    found = [bid for _, bid in compiled(policy).names_in(phrase_key(text))]
    return list(dict.fromkeys(found))


def find_claim(mime: MimeView, policy: Policy, links: BodyLinks | None = None) -> BrandClaim | None:
    """The brand claimed by the message, strongest signal first, or None. ``links``: the
    scan's shared extraction of the body's links (the links check reads it too)."""
    index = compiled(policy)
    claim = _first_claim(mime, policy, index)
    if claim is None:
        return None
    others = _other_brands(mime, policy, claim.brand)
    if claim.via in (ClaimVia.LOCAL_PART, ClaimVia.BODY):
        body_links = links if links is not None else BodyLinks(mime)
        hosts = _foreign_hosts(body_links, policy, index, claim.brand)
        if claim.via is ClaimVia.BODY and not hosts:
            return None  # a body-only mention linking nowhere foreign claims nothing
        return BrandClaim(claim.brand, claim.via, claim.evidence, claim.from_domain, others, hosts)
    return BrandClaim(claim.brand, claim.via, claim.evidence, claim.from_domain, others)


def _first_claim(mime: MimeView, policy: Policy, index: CompiledPolicy) -> BrandClaim | None:
    from_domains = [a.domain for a in mime.from_addresses if a.domain]
    from_domain = from_domains[0] if from_domains else ""
    for domain in from_domains:
        owners = index.brand_index.official_brands(domain)
        if owners:
            return BrandClaim(owners[0], ClaimVia.FROM_DOMAIN, domain, domain)
    for via, texts in (
        (ClaimVia.DISPLAY_NAME, _display_names(mime.from_addresses)),
        (ClaimVia.SENDER, _display_names(mime.sender)),
        (ClaimVia.LOCAL_PART, _local_parts(mime.from_addresses)),
    ):
        for text in texts:
            hit = named_brand_visually(text, policy)
            if hit:
                return BrandClaim(hit[0], via, text, from_domain)
    hit = named_brand(mime.subject, policy)
    if hit:
        return BrandClaim(hit[0], ClaimVia.SUBJECT, mime.subject, from_domain)
    hit = _addressed_as_user(mime, index)
    if hit is not None:
        return BrandClaim(hit[0], ClaimVia.BODY, hit[1], from_domain)
    return None


def _local_parts(addresses: Iterable[Address]) -> list[str]:
    """Local parts of the From addresses, their separators read as spaces
    ("mon.compte.formation" names Mon Compte Formation, "ameli-info" names ameli)."""
    return [a.address.rpartition("@")[0] for a in addresses if "@" in a.address]


def _addressed_as_user(mime: MimeView, index: CompiledPolicy) -> tuple[str, str] | None:
    """(brand id, phrase) when the body speaks to the reader as the brand's user
    ("votre espace ameli") and calls to action; None otherwise."""
    text = mime.all_text
    found = index.possessive.search(phrase_key(text)) if index.possessive else None
    if found is None:
        return None
    if not index.phrases_in(CALL_TO_ACTION, phrase_key(text)):
        return None
    name, phrase = found
    brand_id = index.brand_of_name.get(name)
    return (brand_id, phrase) if brand_id else None


def _other_brands(mime: MimeView, policy: Policy, brand: str) -> tuple[str, ...]:
    texts = [*_display_names(mime.from_addresses), mime.subject, mime.all_text]
    found: list[str] = []
    for text in texts:
        found += named_brands(text, policy)
    strict = compiled(policy).strict_brands
    return tuple(b for b in dict.fromkeys(found) if b != brand and b in strict)


def _foreign_hosts(
    body_links: BodyLinks, policy: Policy, index: CompiledPolicy, brand: str
) -> tuple[str, ...]:
    # (outside the scan's work budget: at most MAX_BODY_LINKS; the links check reads this
    # extraction again when it found every link)
    links = body_links.get(MAX_BODY_LINKS)
    hosts = dict.fromkeys(link.host.lower() for link in links if link.host)
    return tuple(h for h in hosts if brand not in index.brand_index.official_brands(h))


def _display_names(addresses: Iterable[Address]) -> list[str]:
    """Display names; a bare word without "@" in an address slot is a name too
    ("KetoXplode, <x@y>" parses that way)."""
    names = [a.display_name or ("" if "@" in a.address else a.address) for a in addresses]
    return [n for n in names if n]

"""Which protected brand a message claims to come from, and how it claims it.

Signals, strongest first: the From domain is the brand's own (a claim to be proven by
authentication), the From or Sender display name names the brand, the subject names it.
A mention deep in the body alone is not a claim (newsletters quote brands all the time).
Which domains are a brand's own is answered by the policy's one brand index
(:mod:`milter.checks.compiled`), the same that judges lookalikes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from milter.checks.compiled import compiled
from milter.mime.headers import Address
from milter.mime.parse import MimeView
from milter.policy.model import Policy
from milter.text.confusables import phrase_key


class ClaimVia(StrEnum):
    """How the brand is claimed."""

    FROM_DOMAIN = "from-domain"
    DISPLAY_NAME = "display-name"
    SENDER = "sender"
    SUBJECT = "subject"


@dataclass(frozen=True, slots=True)
class BrandClaim:
    """The brand a message claims, the signal, and the text that carried it."""

    brand: str
    via: ClaimVia
    evidence: str
    from_domain: str


def named_brand(text: str, policy: Policy) -> tuple[str, str] | None:
    """(brand id, matched name) when ``text`` names a brand as whole words."""
    if not text:
        return None
    haystack = phrase_key(text)
    for key, brand_id in compiled(policy).name_keys:
        if key.strip() and key in haystack:
            return brand_id, key.strip()
    return None


def find_claim(mime: MimeView, policy: Policy) -> BrandClaim | None:
    """The brand claimed by the message, strongest signal first, or None."""
    from_domains = [a.domain for a in mime.from_addresses if a.domain]
    from_domain = from_domains[0] if from_domains else ""
    for domain in from_domains:
        owners = compiled(policy).brand_index.official_brands(domain)
        if owners:
            return BrandClaim(owners[0], ClaimVia.FROM_DOMAIN, domain, domain)
    for via, texts in (
        (ClaimVia.DISPLAY_NAME, _display_names(mime.from_addresses)),
        (ClaimVia.SENDER, _display_names(mime.sender)),
        (ClaimVia.SUBJECT, [mime.subject]),
    ):
        for text in texts:
            hit = named_brand(text, policy)
            if hit:
                return BrandClaim(hit[0], via, text, from_domain)
    return None


def _display_names(addresses: Iterable[Address]) -> list[str]:
    """Display names; a bare word without "@" in an address slot is a name too
    ("KetoXplode, <x@y>" parses that way)."""
    names = [a.display_name or ("" if "@" in a.address else a.address) for a in addresses]
    return [n for n in names if n]

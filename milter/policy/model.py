"""The loaded policy: an immutable document plus lookups derived from it once."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from milter.policy.schema import Actions, AllowEntry, Brand, PolicyDocument, Rule, Scoring


@dataclass(frozen=True, slots=True)
class Effective:
    """The rules, scoring and actions in force for one message's recipients."""

    rules: tuple[Rule, ...]
    scoring: Scoring
    actions: Actions


@dataclass(frozen=True, eq=False)  # identity hash: per-policy caches key on it
class Policy:
    """A validated policy. Never mutated: a reload builds a new one."""

    document: PolicyDocument
    files: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    derived: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    """Lookups built from this policy by upper layers when it is loaded (brand index,
    folded keys); they live and die with this instance."""

    @property
    def brands(self) -> Mapping[str, Brand]:
        """Protected brands by id."""
        return self.document.brands

    def brand(self, brand_id: str) -> Brand:
        """The brand with id ``brand_id``."""
        return self.document.brands[brand_id]

    def effective(self, rcpts: Iterable[str]) -> Effective:
        """Per-recipient-domain overrides apply when every recipient is in that domain."""
        doc = self.document
        domains = {r.rpartition("@")[2].lower().rstrip(".") for r in rcpts if "@" in r}
        override = doc.recipient_domains.get(domains.pop()) if len(domains) == 1 else None
        if override is None:
            return Effective(doc.rules, doc.scoring, doc.actions)
        return Effective(
            override.rules if override.rules is not None else doc.rules,
            override.scoring or doc.scoring,
            override.actions or doc.actions,
        )

    def allow_entries(
        self, from_domain: str | None, mail_from_domain: str | None, client_ip: str | None
    ) -> tuple[AllowEntry, ...]:
        """Allowlist entries whose every given selector matches this message."""
        return tuple(
            e
            for e in self.document.allowlist
            if _matches(e, from_domain, mail_from_domain, client_ip)
        )


def _matches(
    entry: AllowEntry, from_domain: str | None, mail_from_domain: str | None, client_ip: str | None
) -> bool:
    if entry.from_domain and entry.from_domain != from_domain:
        return False
    if entry.mail_from_domain and entry.mail_from_domain != mail_from_domain:
        return False
    if entry.client_ip:
        if not client_ip:
            return False
        try:
            return ipaddress.ip_address(client_ip) in ipaddress.ip_network(
                entry.client_ip, strict=False
            )
        except ValueError:
            return False
    return True

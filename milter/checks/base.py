"""What a check is, and the context every check reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from milter.checks.body_links import BodyLinks
from milter.checks.claim import BrandClaim
from milter.checks.compiled import CompiledPolicy, compiled
from milter.dns.resolver import Resolver
from milter.links.extract import LinkSet
from milter.mime.parse import MimeView
from milter.model.auth import AuthResult
from milter.model.envelope import Envelope
from milter.model.findings import Finding
from milter.policy.model import Policy


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Read-only inputs of every check for one message. ``resolver`` is None when the scan
    runs offline (``tocsin scan`` without ``--dns``): checks that need DNS then say so."""

    envelope: Envelope
    mime: MimeView
    policy: Policy
    claim: BrandClaim | None
    resolver: Resolver | None
    shared_links: BodyLinks | None = None  # the scan's, shared with the claim; else made here

    def __post_init__(self) -> None:
        if self.shared_links is None:
            object.__setattr__(self, "shared_links", BodyLinks(self.mime))

    def links(self, max_links: int) -> LinkSet:
        """The body's links, extracted once per scan (:class:`BodyLinks`)."""
        shared = self.shared_links if self.shared_links is not None else BodyLinks(self.mime)
        return shared.get(max_links)

    @property
    def compiled(self) -> CompiledPolicy:
        """The policy's lookups, built once when it was loaded."""
        return compiled(self.policy)


Outcome = Finding | AuthResult
"""What a check returns: findings, and for authentication checks their typed results."""


class Check(Protocol):
    """A check: a stable name and an async run returning findings (and, for
    authentication checks, AuthResults). Exceptions and timeouts are turned into
    CHECK_ERROR findings by the engine.

    A check whose run never awaits (CPU only) says so with a class attribute
    ``awaits_io = False``: the engine then runs it inline while the checks that wait for
    DNS are in flight, with no task or timer of its own
    (:func:`milter.engine.pipeline.run_checks`)."""

    name: str

    async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
        """Inspect the message and return findings (possibly none)."""
        ...

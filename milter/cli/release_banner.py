"""What the engine lends the quarantine and review commands: the banner on release and
the keys of the link warning page (those layers may not import the engine themselves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from milter.engine.release import release_body
from milter.policy.model import Policy
from milter.quarantine.release import ReleaseTransform


def banner_transform(policy: Policy) -> ReleaseTransform:
    """A ``release()`` transform: a message held for impersonation keeps the banner (and
    its links neutralised) unless released as a false positive."""

    def transform(
        raw: bytes, verdict: Mapping[str, Any], rcpts: tuple[str, ...], *, false_positive: bool
    ) -> bytes | None:
        return release_body(raw, verdict, policy, false_positive=false_positive, rcpts=rcpts)

    return transform


def link_keys(policy: Policy) -> tuple[bytes, ...]:
    """Every redirect key of the policy (global and per recipient domain), once each."""
    doc = policy.document
    every = [doc.actions, *(o.actions for o in doc.recipient_domains.values() if o.actions)]
    return tuple(dict.fromkeys(a.redirect_key for a in every if a.redirect_key))

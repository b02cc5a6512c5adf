"""Authentication results whose status values are the RFC 8601 tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class AuthStatus(StrEnum):
    """Result tokens of RFC 8601 §2.7 shared by SPF, DKIM, DMARC and ARC."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"  # SPF only
    NEUTRAL = "neutral"
    NONE = "none"
    POLICY = "policy"  # DKIM: signature valid but rejected by local policy (e.g. weak key)
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class AuthResult:
    """One authentication result: one SPF identity, one DKIM signature, DMARC or ARC.

    ``props`` holds the RFC 8601 properties, e.g. ``{"smtp.mailfrom": "a@b.fr"}`` or
    ``{"header.d": "ameli.fr", "header.s": "sel1"}``; ``reason`` is a human explanation.
    """

    method: str
    result: AuthStatus
    reason: str = ""
    props: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "props", MappingProxyType(dict(self.props)))

    @property
    def signer(self) -> str:
        """For a DKIM result, the signing domain (``header.d``), lower case without the
        trailing dot; empty for other methods."""
        if self.method != "dkim":
            return ""
        return self.props.get("header.d", "").strip().lower().rstrip(".")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "method": self.method,
            "result": str(self.result),
            "reason": self.reason,
            "props": dict(self.props),
        }

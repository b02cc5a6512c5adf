"""Findings: what a check observed, with a stable code, a severity, a brand and evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

from milter.model.codes import Code


class Severity(IntEnum):
    """How bad a finding is on its own; the policy turns severities into actions."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, name: str) -> Severity:
        """Return the severity named ``name`` (case-insensitive)."""
        return cls[name.upper()]

    def __str__(self) -> str:
        return self.name.lower()


def _freeze(evidence: Mapping[str, Any]) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in evidence.items()})


class LinkScope(StrEnum):
    """Which links a finding's link stands for when actions neutralise it."""

    HOST = "host"  # every link to ``host`` (a lookalike, a disguised destination)
    URL = "url"  # this exact URL only (a trick in one link)


@dataclass(frozen=True, slots=True)
class LinkRef:
    """The link behind a link finding, typed for the actions that neutralise it.

    ``url`` is the link as written, uncut (it may be a redirector's); ``host`` and
    ``host_ascii`` are where it really leads, in Unicode and ASCII (IDNA) forms.
    """

    url: str
    host: str = ""
    host_ascii: str = ""
    scope: LinkScope = LinkScope.HOST


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation of one check.

    Attributes:
        code: stable machine name, e.g. ``DMARC_FAIL`` or ``LINK_LOOKALIKE``.
        check: name of the check that produced it.
        severity: how bad it is on its own.
        text: one human sentence saying what and why.
        brand: id of the protected brand concerned, if any.
        evidence: small key/value facts behind the finding (domains, phrases, results),
            under the keys its code declares in :mod:`milter.model.codes`.
        link: the link concerned, for link findings (what the link actions act on).
    """

    code: str  # a Code: __post_init__ rejects anything unregistered
    check: str
    severity: Severity
    text: str
    brand: str | None = None
    evidence: Mapping[str, str] = field(default_factory=dict)
    link: LinkRef | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", Code(self.code))
        object.__setattr__(self, "evidence", _freeze(self.evidence))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (used by ``tocsin scan --json`` and the quarantine sidecar)."""
        found: dict[str, Any] = {
            "code": self.code,
            "check": self.check,
            "severity": str(self.severity),
            "brand": self.brand,
            "text": self.text,
            "evidence": dict(self.evidence),
        }
        if self.link is not None:
            link = self.link
            found["link"] = {
                "url": link.url,
                "host": link.host,
                "host_ascii": link.host_ascii,
                "scope": str(link.scope),
            }
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The finding :meth:`as_dict` wrote (a quarantined message's sidecar).

        Raises ValueError (or KeyError) for data that is not such a view.
        """
        link = data.get("link")
        return cls(
            str(data["code"]),
            str(data.get("check", "")),
            Severity.parse(str(data.get("severity", "info"))),
            str(data.get("text", "")),
            data.get("brand") or None,
            dict(data.get("evidence") or {}),
            LinkRef(
                str(link["url"]),
                str(link.get("host", "")),
                str(link.get("host_ascii", "")),
                LinkScope(str(link.get("scope", "host"))),
            )
            if isinstance(link, Mapping)
            else None,
        )


CHECK_ERROR = Code.CHECK_ERROR

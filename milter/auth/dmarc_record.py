"""DMARC policy record parser (RFC 9989 §4.7, §4.8): pure, no I/O.

Tags read: v, p, sp, np, psd, t, adkim, aspf, rua, ruf. ``pct`` is parsed and kept for
display but has no effect (RFC 9989 removed it). Other tags (fo, rf, ri, unknown ones)
are ignored, as RFC 9989 §4.7 requires of unknown tags.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Alignment",
    "DmarcRecord",
    "Policy",
    "PsdFlag",
    "RecordError",
    "is_dmarc_record",
    "parse_record",
]

_VERSION = re.compile(r"^\s*[vV]\s*=\s*DMARC1\s*(;|$)")  # RFC 9989 §4.8: "v=DMARC1" comes first
_TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")  # RFC 3986 scheme ":" …, no spaces


class Policy(StrEnum):
    """Domain Owner Assessment Policy values of p=, sp= and np= (RFC 9989 §4.7)."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"

    def downgraded(self) -> Policy:
        """The next less severe policy: what ``t=y`` asks receivers to apply instead."""
        return {Policy.REJECT: Policy.QUARANTINE}.get(self, Policy.NONE)


class Alignment(StrEnum):
    """adkim= / aspf= identifier alignment modes (RFC 9989 §4.4)."""

    RELAXED = "r"
    STRICT = "s"


class PsdFlag(StrEnum):
    """psd= (RFC 9989 §4.7): y = Public Suffix Domain, n = Organizational Domain, u = unsaid."""

    YES = "y"
    NO = "n"
    UNKNOWN = "u"


class RecordError(ValueError):
    """The text is a DMARC record (starts with v=DMARC1) but is not a valid one."""


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A valid DMARC policy record."""

    policy: Policy  # p=
    subdomain_policy: Policy | None = None  # sp=; None means "same as p"
    nonexistent_policy: Policy | None = None  # np=; None means "same as sp"
    psd: PsdFlag = PsdFlag.UNKNOWN
    testing: bool = False  # t=y
    adkim: Alignment = Alignment.RELAXED
    aspf: Alignment = Alignment.RELAXED
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    pct: int | None = None  # parsed for display only; RFC 9989 removed pct


def is_dmarc_record(text: str) -> bool:
    """True when ``text`` starts with the v=DMARC1 tag (other TXT records are discarded)."""
    return _VERSION.match(text) is not None


@functools.lru_cache(maxsize=4096)  # pure; the same records come back (errors raise again)
def parse_record(text: str) -> DmarcRecord:
    """Parse one DMARC record; raise ``RecordError`` on any syntax error.

    A missing or invalid p= is read as p=none when rua= holds a valid URI (RFC 9989 §4.7),
    otherwise the record is invalid.
    """
    if not is_dmarc_record(text):
        raise RecordError("record does not start with v=DMARC1")
    tags = _split_tags(text)
    rua = _uris(tags.get("rua", ""))
    policy = _policy_or_none(tags.get("p"))
    if policy is None:
        if not rua:
            raise RecordError(f"missing or invalid p= ({tags.get('p')!r}) and no valid rua=")
        policy = Policy.NONE
    return DmarcRecord(
        policy=policy,
        subdomain_policy=_optional_policy(tags, "sp"),
        nonexistent_policy=_optional_policy(tags, "np"),
        psd=PsdFlag(_choice(tags, "psd", ("y", "n", "u"), "u")),
        testing=_choice(tags, "t", ("y", "n"), "n") == "y",
        adkim=Alignment(_choice(tags, "adkim", ("r", "s"), "r")),
        aspf=Alignment(_choice(tags, "aspf", ("r", "s"), "r")),
        rua=rua,
        ruf=_uris(tags.get("ruf", "")),
        pct=_pct(tags.get("pct")),
    )


def _split_tags(text: str) -> dict[str, str]:
    """tag-list (RFC 9989 §4.8): "name=value" parts separated by ";"; names are unique."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue  # a trailing ";" (and, tolerantly, ";;") is allowed
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not _TAG_NAME.match(name):
            raise RecordError(f"malformed tag {part.strip()!r}")
        if name in tags:
            raise RecordError(f"duplicate tag {name}=")
        tags[name] = value.strip()
    return tags


def _policy_or_none(value: str | None) -> Policy | None:
    if value is None:
        return None
    try:
        return Policy(value.lower())
    except ValueError:
        return None


def _optional_policy(tags: dict[str, str], name: str) -> Policy | None:
    if name not in tags:
        return None
    policy = _policy_or_none(tags[name])
    if policy is None:
        raise RecordError(f"invalid {name}= value {tags[name]!r}")
    return policy


def _choice(tags: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = tags.get(name, default).lower()
    if value not in allowed:
        raise RecordError(f"invalid {name}= value {tags[name]!r}")
    return value


def _uris(value: str) -> tuple[str, ...]:
    """rua=/ruf= URI lists; invalid URIs are dropped (RFC 9989 §4.7)."""
    return tuple(uri for uri in (u.strip() for u in value.split(",")) if _URI.match(uri))


def _pct(value: str | None) -> int | None:
    if value is None or not (value.strip().isascii() and value.strip().isdigit()):
        return None
    number = int(value)
    return number if 0 <= number <= 100 else None

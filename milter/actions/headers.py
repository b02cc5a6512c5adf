"""Header edits: the versioned verdict header, subject tag, removal of forged copies."""

from __future__ import annotations

from collections.abc import Sequence

from milter.mime.headers import decode_words
from milter.model.limits import LIMIT_EXCEEDED as LIMIT
from milter.model.plan import HeaderEdit, HeaderOp
from milter.model.verdict import Verdict

VERDICT_VERSION = "1"


def verdict_header_value(verdict: Verdict) -> str:
    """Machine-readable ``v=1; verdict=…; [would=…;] score=…; brand=…; rule=…; codes=…``
    (Sieve, SIEMs); ``would`` only in monitor mode; ``limits=…`` when a limit was hit."""
    codes = sorted({f.code for f in verdict.findings})
    parts = [
        f"v={VERDICT_VERSION}",
        f"verdict={verdict.disposition}",
        *([f"would={verdict.would}"] if verdict.would is not None else []),
        f"score={verdict.score:g}",
        f"brand={verdict.brand or 'none'}",
        f"rule={verdict.reasons[0].rule if verdict.reasons else 'none'}",
        f"codes={','.join(codes) or 'none'}",
    ]
    limits = sorted({f.evidence.get("limit", "") for f in verdict.findings if f.code == LIMIT})
    if limits:  # which limit a message hit: it was scanned up to there (#17)
        parts.append(f"limits={','.join(limits)}")
    return "; ".join(parts)


def remove_all(headers: Sequence[tuple[str, str]], name: str) -> list[HeaderEdit]:
    """Delete every header called ``name``; highest index first so indexes stay valid."""
    count = sum(1 for n, _ in headers if n.lower() == name.lower())
    return [HeaderEdit(HeaderOp.DELETE, name, "", i) for i in range(count, 0, -1)]


def subject_tag_edit(headers: Sequence[tuple[str, str]], tag: str) -> HeaderEdit | None:
    """Prefix the subject with ``tag`` unless it already carries it (idempotent)."""
    raw = next((v for n, v in headers if n.lower() == "subject"), None)
    if raw is None:
        return HeaderEdit(HeaderOp.ADD, "Subject", tag)
    if decode_words(raw).lstrip().startswith(tag):
        return None
    return HeaderEdit(HeaderOp.CHANGE, "Subject", f"{tag} {raw}", 1)

"""Every finding code Tocsin can emit: the one vocabulary of checks, policy and docs.

A code names the check that emits it, the evidence keys it carries and what it means.
The policy loader rejects any other code (in rules, allowlists and scoring), the
findings refuse to be built with one, and ``docs/policy.md``'s code table is generated
from :data:`CODES` (``python -m milter.model.codes`` prints it; a test keeps it in sync).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Code(StrEnum):
    """A finding code. Being a ``str``, it compares equal to its name."""

    BRAND_CLAIM = "BRAND_CLAIM"
    DISPLAY_NAME_BRAND = "DISPLAY_NAME_BRAND"
    LOCAL_PART_BRAND = "LOCAL_PART_BRAND"
    SUBJECT_BRAND = "SUBJECT_BRAND"
    BODY_BRAND = "BODY_BRAND"
    FROM_MULTIPLE = "FROM_MULTIPLE"
    DISPLAY_NAME_MIXED_SCRIPT = "DISPLAY_NAME_MIXED_SCRIPT"
    REPLY_TO_FOREIGN = "REPLY_TO_FOREIGN"
    BRAND_NEVER_ASKS = "BRAND_NEVER_ASKS"
    URGENCY = "URGENCY"
    CPF_CANVASSING = "CPF_CANVASSING"
    PHONE_NOT_OFFICIAL = "PHONE_NOT_OFFICIAL"
    MIME_DEFECT = "MIME_DEFECT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    CHECK_ERROR = "CHECK_ERROR"
    BRAND_AUTH_FAIL = "BRAND_AUTH_FAIL"
    DMARC_FAIL = "DMARC_FAIL"
    AUTH_TEMPERROR = "AUTH_TEMPERROR"
    AUTH_SKIPPED = "AUTH_SKIPPED"
    AUTH_UPSTREAM = "AUTH_UPSTREAM"
    LINK_LOOKALIKE = "LINK_LOOKALIKE"
    LINK_TEXT_MISMATCH = "LINK_TEXT_MISMATCH"
    LINK_TRICK = "LINK_TRICK"
    FROM_LOOKALIKE = "FROM_LOOKALIKE"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What one code means: who emits it, with which evidence, at which severity."""

    code: Code
    check: str
    evidence: tuple[str, ...]
    severity: str
    doc: str


def _info(code: Code, check: str, evidence: str, severity: str, doc: str) -> CodeInfo:
    return CodeInfo(code, check, tuple(evidence.split()), severity, doc)


C = Code
_ALL = (
    _info(C.BRAND_CLAIM, "brand", "via text", "info",
          "the message claims a protected brand (one per brand named)"),
    _info(C.DISPLAY_NAME_BRAND, "sender", "name from_domain expected", "high",
          "a From or Sender display name names a brand over an address that is not the brand's"),
    _info(C.LOCAL_PART_BRAND, "sender", "local_part from_domain expected link_hosts", "high",
          "the From local part names a brand (`mon.compte.formation@…`) at a foreign domain; "
          "critical when the links go to foreign hosts too"),
    _info(C.SUBJECT_BRAND, "sender", "subject from_domain expected", "medium",
          "the subject names a brand but the sender is not the brand's"),
    _info(C.BODY_BRAND, "sender", "name from_domain expected link_hosts", "medium",
          "only the body names a brand (`votre espace ameli`), with a call to action and "
          "links to foreign hosts: a claim of lower weight"),
    _info(C.FROM_MULTIPLE, "sender", "addresses sender brand_address", "medium",
          "From holds several addresses (DMARC cannot evaluate it); high when one is at a "
          "brand's domain, and never info"),
    _info(C.DISPLAY_NAME_MIXED_SCRIPT, "sender", "name", "medium",
          "a display name mixes alphabets (homoglyph disguise)"),
    _info(C.REPLY_TO_FOREIGN, "sender", "reply_to expected", "medium",
          "replies go to a domain that is not the claimed brand's"),
    _info(C.BRAND_NEVER_ASKS, "phrases", "phrase set", "per phrase set",
          "asks for something the brand never requests by mail (its `never_asks`); "
          "negated or warning sentences do not count"),
    _info(C.URGENCY, "phrases", "phrase set", "low",
          "urgency pressure in a message claiming a brand"),
    _info(C.CPF_CANVASSING, "canvassing", "phrases seller", "high",
          "cold solicitation to spend CPF credits through a training seller: illegal since "
          "loi n° 2022-1587 (code du travail art. L. 6323-8-1)"),
    _info(C.PHONE_NOT_OFFICIAL, "phones", "numbers official", "medium",
          "a callback number the claimed brand does not publish (high for 089x premium numbers)"),
    _info(C.MIME_DEFECT, "defects", "count defects", "low", "malformed MIME (score 0.5)"),
    _info(C.LIMIT_EXCEEDED, "engine", "limit where detail", "low",
          "a limit (headers, depth, parts, text, links, work) was hit: the message was scanned "
          "up to it, never accepted unscanned; `limits.on_limit` can tempfail or reject instead"),
    _info(C.CHECK_ERROR, "engine", "check error", "high",
          "a check crashed or timed out; the shipped rule `check-error` tempfails"),
    _info(C.BRAND_AUTH_FAIL, "auth", "from_domain failed expected", "critical",
          "a claimed brand without the proof the policy requires (aligned DMARC pass for "
          "strict brands, pinned DKIM domains)"),
    _info(C.DMARC_FAIL, "auth", "from_domain policy reason", "medium",
          "DMARC fails (medium when the domain publishes p=quarantine/reject, low otherwise)"),
    _info(C.AUTH_TEMPERROR, "auth", "methods reason", "low",
          "temporary DNS failure; the shipped rule `brand-auth-temperror` tempfails when a "
          "brand is claimed"),
    _info(C.AUTH_SKIPPED, "auth", "from_domain", "info", "offline scan: nothing was verified"),
    _info(C.AUTH_UPSTREAM, "auth", "authserv_ids results", "info",
          "a result taken from a trusted upstream Authentication-Results (score 0)"),
    _info(C.LINK_LOOKALIKE, "links", "url host host_ascii imitates technique context",
          "by context",
          "a link to a lookalike of a brand's domain: critical with a brand claim, high "
          "otherwise, medium in bulk mail ([lookalike.md](lookalike.md))"),
    _info(C.LINK_TEXT_MISMATCH, "links",
          "shown shown_ascii href real_host real_host_ascii context", "by context",
          "link text shows a brand's domain but goes elsewhere; info when From is the "
          "shown brand's own domain"),
    _info(C.LINK_TRICK, "links", "url tricks", "low",
          "userinfo, raw IP, data: URI, zero-width or bidi characters in a link"),
    _info(C.FROM_LOOKALIKE, "links", "from_domain host host_ascii imitates technique",
          "critical", "the From domain is a lookalike of a brand's domain"),
)  # fmt: skip

CODES: Mapping[Code, CodeInfo] = MappingProxyType({i.code: i for i in _ALL})
"""Every code, in documentation order."""

UNPROVEN_BRAND = frozenset(
    {
        Code.BRAND_AUTH_FAIL,
        Code.DISPLAY_NAME_BRAND,
        Code.LOCAL_PART_BRAND,
        Code.SUBJECT_BRAND,
        Code.BODY_BRAND,
        Code.FROM_LOOKALIKE,
        Code.FROM_MULTIPLE,
    }
)
"""Codes saying the message claims a brand it failed to prove (impersonation)."""

DISGUISED_LINKS = frozenset({Code.LINK_LOOKALIKE, Code.LINK_TEXT_MISMATCH})
"""Codes saying a link leads somewhere other than it pretends."""


def is_code(name: str) -> bool:
    """True when ``name`` is a registered finding code."""
    return name in Code.__members__


def undeclared_evidence(code: str, keys: set[str] | frozenset[str]) -> set[str]:
    """Evidence keys a finding carries that its code does not declare."""
    return set(keys) - set(CODES[Code(code)].evidence)


def markdown_table() -> str:
    """The code table of ``docs/policy.md``."""
    rows = ["| code | check | default severity | evidence | meaning |", "|---|---|---|---|---|"]
    for info in CODES.values():
        evidence = ", ".join(f"`{k}`" for k in info.evidence)
        rows.append(f"| `{info.code}` | {info.check} | {info.severity} | {evidence} | {info.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")

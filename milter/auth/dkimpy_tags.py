"""dkimpy's tag=value parse, remembered for the signature fields of the last few messages.

Every DKIM-Signature, ARC-Seal and ARC-Message-Signature field is parsed two or three
times per message: once by Tocsin (which signatures, which key names, which sealers) and
again by dkimpy inside each verification (``dkim.parse_tag_value``: a split and a
``re.match`` per tag). ``parse_tag_value`` here is dkimpy's own function behind a small
memo keyed by the field value; each caller gets its own copy of the dict (dkimpy edits
it: ARC fills in a missing ``c=``). Errors are not remembered. ``install`` puts it in
``dkim``'s namespace, where ``DKIM.verify`` and ``ARC.verify`` look it up at call time.
tests/auth/test_dkimpy_fast.py checks verdicts against dkimpy without it.
"""

from __future__ import annotations

import dkim
import dkim.util

__all__ = ["MEMO_SIZE", "install", "original_parse_tag_value", "parse_tag_value"]

MEMO_SIZE = 64  # field values remembered (a message has a few; oldest dropped first)
original_parse_tag_value = dkim.util.parse_tag_value
_MEMO: dict[bytes, dict[bytes, bytes]] = {}


def parse_tag_value(tag_list: bytes) -> dict[bytes, bytes]:
    """``dkim.util.parse_tag_value``: the tags of ``tag_list``, a new dict each call."""
    found = _MEMO.get(tag_list)
    if found is None:
        found = original_parse_tag_value(tag_list)
        if len(_MEMO) >= MEMO_SIZE:
            del _MEMO[next(iter(_MEMO))]
        _MEMO[tag_list] = found
    return dict(found)


def install() -> None:
    """Put the memo in ``dkim`` (idempotent; milter.auth.dkim calls it)."""
    dkim.parse_tag_value = parse_tag_value

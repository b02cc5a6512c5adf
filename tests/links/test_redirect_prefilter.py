"""The base64 redirect parameter check decodes a value's head first; it answers what
decoding the whole value answers (the plain definition below)."""

from __future__ import annotations

import base64
import binascii
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.links import redirect


def _plain(value: str) -> str | None:
    if not redirect._B64_RE.fullmatch(value):
        return None
    text = value.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(
            text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
        )
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded if redirect._looks_like_url(decoded) and decoded.isprintable() else None


_STARTS = st.sampled_from(
    ["https://", "HTTP://", "hxxps://", "//", "www.", "WwW.", "htt", "ftp://", "", "é", "\x00"]
)
_ENCODED = st.tuples(_STARTS, st.text(max_size=40), st.booleans(), st.booleans()).map(
    lambda t: (base64.urlsafe_b64encode if t[2] else base64.b64encode)(
        (t[0] + t[1]).encode()
    ).decode()[: None if t[3] else -1]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_ENCODED, st.text(alphabet="abcXYZ019+/_-=", max_size=40)))
def test_base64_values_are_read_as_the_whole_decode_reads_them(value: str) -> None:
    assert redirect._b64_url(value) == _plain(value)


def test_a_base64_target_is_still_unwrapped() -> None:
    inner = "https://ameli-remboursement.fr/connexion?id=42"
    token = base64.urlsafe_b64encode(inner.encode()).decode().rstrip("=")
    found = redirect.unwrap_once(f"https://t.lettre.fr/c?u={token}&utm_source=x")
    assert found == (inner, "query-param")


def test_the_path_stop_class_is_every_character_but_the_four() -> None:
    """_PATH_STOP_RE's class, spelled as ranges, is [^#?:%]: the same characters, every
    code point (a run stops at the first of those four and nowhere else)."""
    spelled = re.compile(redirect._PATH_STOP_RE.pattern.removesuffix("*+"))
    negated = re.compile(r"[^#?:%]")
    for code in range(0x110000):
        char = chr(code)
        assert bool(spelled.match(char)) == bool(negated.match(char)), hex(code)
    assert redirect._PATH_STOP_RE.pattern.endswith("]*+")

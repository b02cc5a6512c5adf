"""Where a URL can be written in text: the anchors the text URL scan looks for.

Tokens are runs of characters that may appear in a URL written in text. Only tokens with
"://" or a dot followed by another token character can hold one (a scheme, "www.x" or a
dotted host). A text without either anchor holds no URL; and since a delimiter (a space)
between two texts keeps every token within one text, texts scanned together give the
URLs of each text scanned alone.
"""

from __future__ import annotations

import re

# The delimiters: white space (str.isspace's characters: \s, spelled out), <>"'`, the C0
# controls and DEL. Spelled out, the negated class is one bitmap look-up a character;
# with \s in it, the regex engine calls a function for each (twice the time of a
# token's run). tests/links/test_text_urls_prefilter.py checks it is \s<>"'`\x00-\x1f\x7f.
TOKEN_DELIMS = r"""\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000<>"'`"""
# The same, as code point ranges (for token_chars).
_DELIM_RANGES = (
    (0x00, 0x20),
    (0x22, 0x22),  # "
    (0x27, 0x27),  # '
    (0x3C, 0x3C),  # <
    (0x3E, 0x3E),  # >
    (0x60, 0x60),  # `
    (0x7F, 0x7F),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)


def token_chars(but: str = "") -> str:
    """The body of a regex class of the token characters (all but TOKEN_DELIMS) but
    those of ``but``, spelled as the ranges between them: a positive class, which the
    regex engine tests in 27 instructions a character where ``[^...]`` takes 42-48 (its
    NEGATE is one more step per character). For the runs over whole tokens."""
    cut = sorted(_DELIM_RANGES + tuple((ord(char), ord(char)) for char in but))
    ranges, low = [], 0
    for start, end in cut:
        if start > low:
            ranges.append(f"\\U{low:08x}-\\U{start - 1:08x}")
        low = max(low, end + 1)
    if low <= 0x10FFFF:
        ranges.append(f"\\U{low:08x}-\\U0010ffff")
    return "".join(ranges)


# The two anchors are searched apart: each pattern then starts with a literal, which the
# regex engine finds with a fast scan (one alternation is tried at every character:
# ~15x slower over prose).
DOT_ANCHOR_RE = re.compile(rf"\.[^{TOKEN_DELIMS}.]")


def has_url_anchor(text: str) -> bool:
    """``text`` has "://" or a dot followed by a token character: it may hold a URL."""
    return ("." in text and DOT_ANCHOR_RE.search(text) is not None) or (
        ":" in text and "://" in text  # (a one-character look-up first: faster)
    )

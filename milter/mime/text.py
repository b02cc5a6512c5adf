"""Turn HTML into the plain text a reader sees, cheaply (regexes, no DOM).

The result feeds phrase and brand checks only; link extraction reads the HTML itself.
"""

from __future__ import annotations

import html
import re

_INVISIBLE = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BLOCK = re.compile(r"<(?:br|/p|/div|/tr|/h[1-6]|/li|/td)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]{0,4096}>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML document, whitespace collapsed."""
    text = _COMMENT.sub(" ", markup)
    text = _INVISIBLE.sub(" ", text)
    text = _BLOCK.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()

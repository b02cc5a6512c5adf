"""A held message taken apart for display, never rendered: shared by ``tocsin quarantine
show`` and the review page.

Everything returned is still untrusted text (each display escapes it its own way), but
links are already defanged (``hxxps://ameli-rembourse[.]fr/...``, the project's
``defang_url``), HTML parts are converted to text, and attachments are described (name,
type, size, SHA-256) without being opened.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import unicodedata
from typing import Any

from milter.links import extract_links
from milter.mime.headers import decode_words
from milter.mime.parse import parse_message
from milter.text.url import defang_url

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
MAX_LINKS = 200
_INLINE_TYPES = frozenset({"text/plain", "text/html"})
_URL = re.compile(r"(?i)\b(?:https?|ftp)://[^\s<>\"'`]+")


def _escape(char: str) -> str:
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def clean(text: str, multiline: bool = False) -> str:
    """``text`` with every unsafe character replaced by a visible escape.

    Control and format characters (ANSI escapes, bidi overrides, zero-width characters)
    become ``\\x1b``, ``\\u202e``... Newlines (and tabs) are kept only when
    ``multiline``; single-line fields show them escaped too, so a header value cannot
    forge extra lines.
    """
    if multiline:
        text = text.replace("\r\n", "\n")  # CRLF line ends are line ends, not a stray \x0d
    out: list[str] = []
    for char in text:
        if (multiline and char in "\n\t") or (
            char.isprintable() and unicodedata.category(char) not in _UNSAFE_CATEGORIES
        ):
            out.append(char)
        elif unicodedata.category(char) == "Zs":
            out.append(" ")  # no-break and narrow spaces (French typography)
        else:
            out.append(_escape(char))
    return "".join(out)


def defanged_text(text: str, hosts: frozenset[str]) -> str:
    """Every URL, and every bare mention of a linked host, defanged."""
    text = _URL.sub(lambda m: defang_url(m.group(0)), text)
    names = sorted((h for h in hosts if "." in h), key=len, reverse=True)
    if not names:
        return text
    bare = re.compile(
        r"(?<![\w.@/\[-])(?:" + "|".join(re.escape(h) for h in names) + r")(?![\w-]|\.[\w-])",
        re.I,
    )
    return bare.sub(lambda m: m.group(0).replace(".", "[.]"), text)


def attachments(raw: bytes) -> list[dict[str, Any]]:
    """Leaf parts that are not inline text: path, filename, type, decoded size, SHA-256."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    out: list[dict[str, Any]] = []
    for path, part in _leaves(message, "1", 0):
        ctype = part.get_content_type()
        filename = part.get_filename()
        if not filename and ctype in _INLINE_TYPES:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        out.append(
            {
                "path": path,
                "filename": decode_words(filename) if filename else None,
                "content_type": ctype,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return out


def _leaves(part: email.message.Message, path: str, depth: int) -> list[tuple[str, Any]]:
    """Leaf parts with IMAP-style paths, at most 20 levels and 500 parts deep."""
    if not part.is_multipart():
        return [(path, part)]
    if depth >= 20:
        return []
    found: list[tuple[str, Any]] = []
    children = part.get_payload()
    for index, child in enumerate(children if isinstance(children, list) else [], 1):
        found += _leaves(child, f"{path}.{index}" if depth else str(index), depth + 1)
        if len(found) >= 500:
            break
    return found


def inspect_message(raw: bytes) -> dict[str, Any]:
    """Decoded, defanged, never-rendered view of a message (strings still untrusted)."""
    view = parse_message(raw)
    links = extract_links(view.texts, view.htmls, max_links=MAX_LINKS)
    hosts = links.hosts()
    return {
        "headers": [[name, decode_words(value)] for name, value in view.headers],
        "subject": view.subject,
        "attachments": attachments(raw),
        "links": [
            {
                "url": defang_url(link.target or link.url),
                "source": link.source,
                "anchor": defanged_text(link.anchor, hosts),
                "flags": sorted(str(f) for f in link.flags),
            }
            for link in links
        ],
        "links_truncated": links.truncated,
        "texts": [defanged_text(t, hosts) for t in view.texts],
        "html_texts": [defanged_text(t, hosts) for t in view.html_texts],
        "defects": list(view.defects),
    }

"""Host literals as browsers read them: IPv4 in any notation, IPv6, hidden characters."""

from __future__ import annotations

import ipaddress

#: Zero-width and other invisible format characters that hide inside links.
INVISIBLE_CHARS = frozenset(
    "\u00ad\u034f\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"
)
#: Bidirectional controls (RLO and friends) used to reverse what the reader sees.
BIDI_CHARS = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DROP_HIDDEN = {ord(c): None for c in INVISIBLE_CHARS | BIDI_CHARS}
_DOT_LIKE = {ord(c): "." for c in "\u3002\uff0e\uff61"}


def hidden_chars(text: str) -> tuple[bool, bool]:
    """Return (has invisible/zero-width chars, has bidi controls)."""
    if text.isascii():
        return False, False
    chars = set(text)
    return bool(chars & INVISIBLE_CHARS), bool(chars & BIDI_CHARS)


def strip_hidden(text: str) -> str:
    """Remove zero-width and bidi control characters."""
    return text if text.isascii() else text.translate(_DROP_HIDDEN)


def normalize_host(host: str) -> str:
    """Lower-case, drop hidden chars, map ideographic dots, strip brackets and a trailing dot."""
    if host.isascii():
        host = host.strip().lower()
    else:
        host = strip_hidden(host).translate(_DOT_LIKE).strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def _ipv4_part(part: str) -> int | None:
    if not part:
        return None
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part[0] == "0":
            return int(part, 8)
        return int(part, 10) if part.isascii() and part.isdigit() else None
    except ValueError:
        return None


def ends_in_number(host: str) -> bool:
    """WHATWG "ends in a number": the last label is digits or ``0x`` hex (IPv4 parse applies)."""
    parts = host.split(".")
    if not parts[-1] and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last.isascii() and last.isdigit():
        return True
    return last[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in last[2:])


def parse_ipv4(host: str) -> tuple[str, bool] | None:
    """Parse a host the way browsers do (decimal, hex, octal, short forms).

    Returns ``(dotted_quad, obfuscated)`` or None when the host is not an IPv4 address;
    ``obfuscated`` is True for any form other than plain dotted decimal.
    """
    parts = host.split(".")
    if len(parts) > 1 and not parts[-1]:
        parts.pop()  # one trailing dot is allowed
    if len(parts) > 4 or not parts[-1] or parts[-1][0] not in "0123456789":
        return None
    values = [_ipv4_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    nums = [v for v in values if v is not None]
    if any(v > 255 for v in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        return None
    number = nums[-1]
    for i, v in enumerate(nums[:-1]):
        number += v << (8 * (3 - i))
    dotted = str(ipaddress.IPv4Address(number))
    return dotted, dotted != host


def parse_ipv6(host: str) -> str | None:
    """Compressed form of an IPv6 literal (without brackets), or None."""
    if ":" not in host:
        return None
    try:
        return ipaddress.IPv6Address(host.split("%", 1)[0]).compressed
    except ValueError:
        return None

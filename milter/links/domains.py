"""Host names: IDNA forms, registrable domain (offline PSL), IP literals, invisible characters.

Everything here is pure: the public-suffix list is the snapshot bundled with
``tldextract`` and is never refreshed from the network.
"""

from __future__ import annotations

import functools
import ipaddress
import unicodedata
from typing import NamedTuple

import tldextract

#: Zero-width and other invisible format characters that hide inside links.
INVISIBLE_CHARS = frozenset(
    "\u00ad\u034f\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"
)
#: Bidirectional controls (RLO and friends) used to reverse what the reader sees.
BIDI_CHARS = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_HIDDEN = INVISIBLE_CHARS | BIDI_CHARS
_DROP_HIDDEN = {ord(c): None for c in _HIDDEN}
_DOT_LIKE = {ord(c): "." for c in "\u3002\uff0e\uff61"}


class HostParts(NamedTuple):
    """A host split on the public-suffix list: ``sub.domain.suffix``."""

    subdomain: str
    domain: str
    suffix: str

    @property
    def registrable(self) -> str:
        """``domain.suffix`` (or the bare host when it has no known suffix)."""
        if self.domain and self.suffix:
            return f"{self.domain}.{self.suffix}"
        return self.domain or self.suffix


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # suffix_list_urls=() and cache_dir=None: bundled snapshot only, no download, no disk cache.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.cache
def _psl() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(exact rules, wildcard parents, exceptions) of tldextract's bundled ICANN list, ASCII."""
    exact: set[str] = set()
    wild: set[str] = set()
    exceptions: set[str] = set()
    for rule in _extractor().tlds:
        if rule.startswith("*."):
            wild.add(host_to_ascii(rule[2:]))
        elif rule.startswith("!"):
            exceptions.add(host_to_ascii(rule[1:]))
        else:
            exact.add(host_to_ascii(rule))
    return frozenset(exact), frozenset(wild), frozenset(exceptions)


def _suffix_start(host: str, starts: list[int]) -> int:
    """Index (in ``starts``) of the first label of the public suffix; len(starts) if none."""
    exact, wild, exceptions = _psl()
    count = len(starts)
    for idx, pos in enumerate(starts):
        tail = host[pos:]
        if tail in exceptions:
            return idx + 1
        if tail in exact or (idx + 1 < count and host[starts[idx + 1] :] in wild):
            return idx
    return count


def split_host(host: str) -> HostParts:
    """Split a lower-case ASCII host on tldextract's bundled public-suffix snapshot.

    Same answers as ``tldextract`` (ICANN section only, unknown TLD → empty suffix) but
    without its per-call URL handling and IDNA checks, which dominate its cost.
    """
    labels = host.split(".")
    starts = [0]
    for label in labels[:-1]:
        starts.append(starts[-1] + len(label) + 1)
    first = _suffix_start(host, starts)
    suffix = host[starts[first] :] if first < len(starts) else ""
    if first == 0:
        return HostParts("", "", suffix)
    dom_index = first - 1
    subdomain = host[: starts[dom_index] - 1] if dom_index else ""
    return HostParts(subdomain, labels[dom_index], suffix)


def registrable_domain(host: str) -> str:
    """Registrable domain (eTLD+1) of ``host``, in the form given (Unicode or ASCII)."""
    return split_host(host).registrable


def hidden_chars(text: str) -> tuple[bool, bool]:
    """Return (has invisible/zero-width chars, has bidi controls)."""
    if text.isascii():
        return False, False
    chars = set(text)
    return bool(chars & INVISIBLE_CHARS), bool(chars & BIDI_CHARS)


def strip_hidden(text: str) -> str:
    """Remove zero-width and bidi control characters."""
    return text if text.isascii() else text.translate(_DROP_HIDDEN)


def _label_to_unicode(label: str) -> str:
    if label.startswith("xn--"):
        try:
            return label[4:].encode("ascii").decode("punycode").lower()
        except (UnicodeError, ValueError):
            return label
    return label


def _label_to_ascii(label: str) -> str:
    if label.isascii():
        return label
    folded = unicodedata.normalize("NFKC", label).casefold()
    if folded.isascii():
        return folded
    try:
        return "xn--" + folded.encode("punycode").decode("ascii")
    except UnicodeError:  # pragma: no cover - punycode encodes any str
        return folded


def normalize_host(host: str) -> str:
    """Lower-case, drop hidden chars, map ideographic dots, strip brackets and a trailing dot."""
    if host.isascii():
        host = host.strip().lower()
    else:
        host = strip_hidden(host).translate(_DOT_LIKE).strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def host_to_unicode(host: str) -> str:
    """Unicode form of a host (``xn--`` labels decoded; undecodable labels kept)."""
    if "xn--" not in host:
        return host
    return ".".join(_label_to_unicode(label) for label in host.split("."))


def host_to_ascii(host: str) -> str:
    """ASCII (punycode) form of a host; labels are NFKC-casefolded first, as browsers do."""
    if host.isascii():
        return host
    return ".".join(_label_to_ascii(label) for label in host.split("."))


def has_punycode(host: str) -> bool:
    """True when some label of ``host`` is an ``xn--`` A-label."""
    return host.startswith("xn--") or ".xn--" in host


def _ipv4_part(part: str) -> int | None:
    if not part:
        return None
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part[0] == "0":
            return int(part, 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def parse_ipv4(host: str) -> tuple[str, bool] | None:
    """Parse a host the way browsers do (decimal, hex, octal, short forms).

    Returns ``(dotted_quad, obfuscated)`` or None when the host is not an IPv4 address;
    ``obfuscated`` is True for any form other than plain dotted decimal.
    """
    parts = host.split(".")
    if len(parts) > 4 or not parts[-1] or not (parts[-1][0].isdigit()):
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

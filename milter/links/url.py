"""Tolerant URL parsing as a browser would read it, keeping the tricks it sees as flags."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote, urljoin

from milter.links.domains import (
    has_punycode,
    hidden_chars,
    host_to_ascii,
    host_to_unicode,
    normalize_host,
    parse_ipv4,
    parse_ipv6,
    strip_hidden,
)


class LinkFlag(enum.StrEnum):
    """Stable names of the tricks and properties seen in one link."""

    USERINFO = "userinfo"  # user@ before the host: https://ameli.fr@evil.example
    IP_HOST = "ip-host"  # host is an IPv4/IPv6 literal
    IP_OBFUSCATED = "ip-obfuscated"  # IPv4 written in decimal, hex, octal or short form
    PUNYCODE = "punycode"  # some label is an xn-- A-label
    IDN = "idn"  # host written with non-ASCII characters
    INVISIBLE = "invisible-chars"  # zero-width / soft hyphen characters in the URL
    BIDI = "bidi-chars"  # bidirectional controls (RLO...) in the URL
    DATA_URI = "data-uri"
    JAVASCRIPT = "javascript-uri"
    MAILTO = "mailto"
    NO_SCHEME = "no-scheme"  # text URL written without a scheme (www.x.fr, x.fr/path)
    RELATIVE = "relative"  # relative reference with no usable base
    BASE_RESOLVED = "base-resolved"  # resolved against <base href>
    ENCODED_HOST = "encoded-host"  # percent-encoded characters in the host
    BACKSLASH = "backslash"  # backslash in the authority (browsers read it as "/")
    PORT = "port"  # explicit port
    ANCHOR_MISMATCH = "anchor-mismatch"  # anchor text names another registrable domain


_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]{0,30}):")
_WS = {ord(c): None for c in "\t\r\n"}
_SPECIAL = frozenset({"http", "https", "ftp", "ws", "wss", "hxxp", "hxxps"})


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """Result of :func:`parse_url`: the absolute target and what was seen in it."""

    target: str
    scheme: str
    host: str
    host_ascii: str
    userinfo: str
    flags: frozenset[LinkFlag]


def _split_authority(rest: str) -> tuple[str, str]:
    """Split ``authority`` from the path part of what follows ``scheme://``."""
    end = len(rest)
    for sep in "/?#\\":
        pos = rest.find(sep)
        if 0 <= pos < end:
            end = pos
    return rest[:end], rest[end:]


def _host_from_authority(authority: str, flags: set[LinkFlag]) -> tuple[str, str]:
    """Return (userinfo, host) with flags for userinfo, port, encoding and IP forms."""
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        flags.add(LinkFlag.USERINFO)
    if hostport.startswith("["):
        host = hostport[1 : hostport.find("]")] if "]" in hostport else hostport[1:]
        port = hostport[hostport.find("]") + 1 :] if "]" in hostport else ""
    else:
        host, _, port = hostport.partition(":")
        port = ":" + port if port else ""
    if port.startswith(":") and len(port) > 1:
        flags.add(LinkFlag.PORT)
    if "%" in host and parse_ipv6(host) is None:
        flags.add(LinkFlag.ENCODED_HOST)
        host = unquote(host)
    return userinfo, normalize_host(host)


def _host_forms(host: str, flags: set[LinkFlag]) -> tuple[str, str]:
    """Return (unicode, ascii) host forms, adding IP / IDN / punycode flags."""
    if not host:
        return "", ""
    v6 = parse_ipv6(host)
    if v6 is not None:
        flags.add(LinkFlag.IP_HOST)
        return v6, v6
    v4 = parse_ipv4(host)
    if v4 is not None:
        flags.add(LinkFlag.IP_HOST)
        if v4[1]:
            flags.add(LinkFlag.IP_OBFUSCATED)
        return v4[0], v4[0]
    if not host.isascii():
        flags.add(LinkFlag.IDN)
    if has_punycode(host):
        flags.add(LinkFlag.PUNYCODE)
    ascii_host = host_to_ascii(host)
    return host_to_unicode(ascii_host), ascii_host


def _mailto_host(rest: str) -> tuple[str, str]:
    address = unquote(rest.split("?", 1)[0].split(",", 1)[0])
    local, at, domain = address.rpartition("@")
    return (local, normalize_host(domain)) if at else ("", "")


def parse_url(raw: str, base: str = "", *, assume_http: bool = False) -> ParsedUrl:
    """Parse ``raw`` tolerantly; resolve it against ``base`` when relative.

    ``assume_http`` prefixes ``http://`` to scheme-less text forms (``www.x.fr/a``).
    Never raises on malformed input.
    """
    flags: set[LinkFlag] = set()
    invisible, bidi = hidden_chars(raw)
    if invisible:
        flags.add(LinkFlag.INVISIBLE)
    if bidi:
        flags.add(LinkFlag.BIDI)
    text = strip_hidden(raw).translate(_WS).strip()
    match = _SCHEME_RE.match(text)
    if match is None or (assume_http and not text[match.end() :].startswith("//")):
        if assume_http:
            flags.add(LinkFlag.NO_SCHEME)
            text = "http://" + text
        elif base:
            try:
                text = urljoin(base, text)
            except ValueError:
                pass
            else:
                flags.add(LinkFlag.BASE_RESOLVED)
        elif text.startswith("//"):
            text = "http:" + text
        match = _SCHEME_RE.match(text)
    if match is None:
        flags.add(LinkFlag.RELATIVE)
        return ParsedUrl(text, "", "", "", "", frozenset(flags))
    return _parse_absolute(text, match.group(1).lower(), match.end(), flags)


def _parse_absolute(text: str, scheme: str, end: int, flags: set[LinkFlag]) -> ParsedUrl:
    rest = text[end:]
    userinfo = host = ""
    if scheme == "javascript":
        flags.add(LinkFlag.JAVASCRIPT)
    elif scheme == "data":
        flags.add(LinkFlag.DATA_URI)
    elif scheme == "mailto":
        flags.add(LinkFlag.MAILTO)
        userinfo, host = _mailto_host(rest)
    elif rest.startswith(("//", "\\\\", "/\\", "\\/")) or (scheme in _SPECIAL and rest):
        body = rest.lstrip("/\\")
        authority, _ = _split_authority(body)
        if "\\" in rest[: len(rest) - len(body) + len(authority) + 1]:
            flags.add(LinkFlag.BACKSLASH)
        userinfo, host = _host_from_authority(authority, flags)
    unicode_host, ascii_host = _host_forms(host, flags)
    return ParsedUrl(text, scheme, unicode_host, ascii_host, userinfo, frozenset(flags))

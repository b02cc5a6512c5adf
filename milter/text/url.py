"""URLs read the way a browser reads them (WHATWG URL Standard), for detection, rewriting
and display alike.

One parser, so that the link detector, the link rewriter and ``quarantine show`` cannot
disagree about a URL's host: a link the detector reads as ``evil.fr`` and the rewriter as
``ameli.fr`` would be a bypass. What browsers do and this module follows:

- leading/trailing C0 controls and spaces are dropped, tabs and newlines removed anywhere;
- for special schemes (http, https, ftp, ws, wss) any run of ``/`` and ``\\`` after the
  scheme starts the authority (``https:\\\\x.fr\\`` is ``https://x.fr/``), and ``\\`` ends it
  like ``/`` (``https://ameli.fr\\@evil.fr/`` goes to ameli.fr);
- the authority ends at the first ``/``, ``\\``, ``?`` or ``#``; the host follows its last
  ``@``; the host is percent-decoded, then IDNA-mapped (UTS #46), then checked for
  forbidden code points (``%2F`` decodes to ``/``, which makes the URL invalid);
- a host that ends in a number is an IPv4 address in any notation (``0x7f.1``).

Python's ``urllib.parse`` follows RFC 3986, not browsers, so it answers differently for
exactly the inputs attackers use; the WHATWG host rules are written here once. Where the
standard says "failure" the URL still gets a best-effort host (what a lenient client would
use) and the ``invalid`` flag, so that a check can still judge it.
"""

from __future__ import annotations

import enum
import functools
import re
from typing import NamedTuple
from urllib.parse import unquote_to_bytes, urljoin

from milter.text.host import (
    BIDI_CHARS,
    INVISIBLE_CHARS,
    ends_in_number,
    hidden_chars,
    normalize_host,
    parse_ipv4,
    parse_ipv6,
    strip_hidden,
)
from milter.text.idna import has_punycode, is_valid, to_ascii, to_unicode

__all__ = [
    "LinkFlag",
    "ParsedUrl",
    "bracket_dots",
    "defang_url",
    "host_of",
    "parse_url",
    "read_url",
]


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
    INVALID = "invalid"  # a browser would refuse this URL (WHATWG "failure")


_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]{0,30}):")
_C0_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_NEWLINE = {ord(c): None for c in "\t\r\n"}
_SPECIAL = frozenset({"http", "https", "ftp", "ws", "wss", "hxxp", "hxxps", "fxp"})
_DEFAULT_PORT = {"http": "80", "https": "443", "ftp": "21", "ws": "80", "wss": "443"}
# WHATWG forbidden domain code points (after percent-decoding and IDNA mapping).
_FORBIDDEN_DOMAIN = frozenset(
    [chr(c) for c in range(0x21)] + list(" #/:<>?@[\\]^|%\x7f"),
)
_DEFANG_SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}


class ParsedUrl(NamedTuple):
    """Result of :func:`parse_url`: the absolute target and what was seen in it.

    ``host`` is the Unicode form, ``host_ascii`` the A-label form (both lower-case, no
    trailing dot); both are "" when the URL has no host (``mailto:`` gives the address's
    domain). ``authority`` is the ``(start, end)`` span of the authority in ``target``.
    """

    target: str
    scheme: str
    host: str
    host_ascii: str
    userinfo: str
    flags: frozenset[LinkFlag]
    authority: tuple[int, int] = (0, 0)

    def path_query(self) -> tuple[str, str]:
        """``(path, query)`` of ``target``: the path runs from the end of the authority to
        the first ``?`` or ``#``, the query from that ``?`` to the ``#``. ``("", "")``
        when the URL has no authority (``mailto:``, ``data:``, relative)."""
        end = self.authority[1]
        if not end:
            return "", ""
        target = self.target
        fragment = target.find("#", end)
        if fragment < 0:
            fragment = len(target)
        question = target.find("?", end, fragment)
        if question < 0:
            return target[end:fragment], ""
        return target[end:question], target[question + 1 : fragment]


class _Authority(NamedTuple):
    start: int  # index of the first authority character
    end: int  # index just past the authority
    backslash: bool  # a backslash sat among the slashes or ended the authority


def _clean(raw: str, flags: set[LinkFlag]) -> str:
    invisible, bidi = hidden_chars(raw)
    if invisible:
        flags.add(LinkFlag.INVISIBLE)
    if bidi:
        flags.add(LinkFlag.BIDI)
    text = strip_hidden(raw)
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.translate(_TAB_NEWLINE)
    return text.strip(_C0_SPACE)


_SPECIAL_AUTHORITY = re.compile(r"([/\\]*)([^/\\?#]*)")


def _special_authority(text: str, after_scheme: int) -> _Authority:
    """Authority span of a special-scheme URL: slashes of either kind skipped, then up to
    the first ``/ \\ ? #``."""
    match = _SPECIAL_AUTHORITY.match(text, after_scheme)
    assert match is not None  # the pattern matches the empty string
    start, end = match.end(1), match.end()
    backslash = "\\" in match.group(1) or text[end : end + 1] == "\\"
    return _Authority(start, end, backslash)


def _plain_authority(text: str, after_scheme: int) -> _Authority | None:
    """Authority span of a non-special URL (``scheme://…``), None for an opaque path."""
    if not text.startswith("//", after_scheme):
        return None
    start = after_scheme + 2
    end = start
    while end < len(text) and text[end] not in "/?#":
        end += 1
    return _Authority(start, end, False)


def _decode_host(raw_host: str, flags: set[LinkFlag]) -> str:
    if "%" not in raw_host:
        return raw_host
    flags.add(LinkFlag.ENCODED_HOST)
    return unquote_to_bytes(raw_host).decode("utf-8", "replace")


def _split_hostport(hostport: str, flags: set[LinkFlag]) -> str:
    """The host part of ``host[:port]``; flags an explicit or invalid port."""
    if hostport.startswith("["):
        close = hostport.find("]")
        host, port = (hostport, "") if close < 0 else (hostport[: close + 1], hostport[close + 1 :])
        if port and not port.startswith(":"):
            flags.add(LinkFlag.INVALID)
        port = port[1:]
    else:
        host, _, port = hostport.partition(":")
    if port:
        if not port.isascii() or not port.isdigit() or int(port) > 65535:
            flags.add(LinkFlag.INVALID)
        flags.add(LinkFlag.PORT)
    return host


def _host_forms(host: str, special: bool, flags: set[LinkFlag]) -> tuple[str, str]:
    """Return (unicode, ascii) host forms, adding IP / IDN / punycode / invalid flags."""
    forms = _host_forms_of if len(host) <= _CACHED_HOST_CHARS else _host_forms_of.__wrapped__
    unicode_host, ascii_host, added = forms(host, special)
    flags |= added
    return unicode_host, ascii_host


_CACHED_HOST_CHARS = 255  # longer written hosts are read every time (bounded memory)


@functools.lru_cache(maxsize=8192)
def _host_forms_of(host: str, special: bool) -> tuple[str, str, frozenset[LinkFlag]]:
    """:func:`_host_forms` for one written host, cached across messages: the same hosts
    come back in every newsletter (trackers, image servers), and the answer depends on
    the host alone."""
    flags: set[LinkFlag] = set()
    unicode_host, ascii_host = _read_host(host, special, flags)
    return unicode_host, ascii_host, frozenset(flags)


def _read_host(host: str, special: bool, flags: set[LinkFlag]) -> tuple[str, str]:
    if host.startswith("["):
        v6 = parse_ipv6(host[1:-1] if host.endswith("]") else host[1:])
        if v6 is None:
            flags.add(LinkFlag.INVALID)
            return normalize_host(host), normalize_host(host)
        flags.add(LinkFlag.IP_HOST)
        return v6, v6
    if not special:  # an opaque host: kept as written, lower-cased
        host = normalize_host(host)
        return host, host
    host = _decode_host(host, flags)
    if not host.isascii():
        flags.add(LinkFlag.IDN)
    host = strip_hidden(host)
    ascii_host = to_ascii(host)
    if any(c in _FORBIDDEN_DOMAIN for c in ascii_host) or not ascii_host or not is_valid(host):
        flags.add(LinkFlag.INVALID)
    if ends_in_number(ascii_host):
        v4 = parse_ipv4(ascii_host)
        if v4 is None:
            flags.add(LinkFlag.INVALID)
        else:
            flags.add(LinkFlag.IP_HOST)
            if v4[1] and v4[0] != ascii_host.rstrip("."):
                flags.add(LinkFlag.IP_OBFUSCATED)
            return v4[0], v4[0]
    if has_punycode(host):
        flags.add(LinkFlag.PUNYCODE)
    ascii_host = normalize_host(ascii_host)
    return normalize_host(to_unicode(ascii_host)), ascii_host


def _mailto_host(rest: str) -> tuple[str, str]:
    address = unquote_to_bytes(rest.split("?", 1)[0].split(",", 1)[0]).decode("utf-8", "replace")
    local, at, domain = address.rpartition("@")
    return (local, normalize_host(domain)) if at else ("", "")


def _absolute(text: str, base: str, assume_http: bool, flags: set[LinkFlag]) -> str | None:
    """``text`` made absolute (scheme-less text URL, base-resolved, ``//`` form) or None."""
    match = _SCHEME_RE.match(text)
    if match is not None and not (assume_http and not text[match.end() :].startswith("//")):
        scheme = match.group(1).lower()
        if base and scheme in _SPECIAL and scheme == _scheme_of(base):
            rest = text[match.end() :]
            if not rest.startswith(("/", "\\")):  # "http:foo" against an http base: relative
                return _join(base, rest, flags)
        return text
    if assume_http:
        flags.add(LinkFlag.NO_SCHEME)
        return "http://" + text
    if base:
        return _join(base, text, flags)
    if text.startswith(("//", "\\\\", "/\\", "\\/")):
        return "http:" + text
    return None


def _scheme_of(url: str) -> str:
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else ""


def _join(base: str, text: str, flags: set[LinkFlag]) -> str | None:
    if text.startswith(("\\\\", "/\\", "\\/")):  # browsers read these as "//"
        text = "//" + text[2:]
    try:
        joined = urljoin(base, text.replace("\\", "/"))
    except ValueError:
        return None
    flags.add(LinkFlag.BASE_RESOLVED)
    return joined


# The common link, read in one match: http(s)://host[/?#...] with a plain ASCII host (no
# userinfo, port, percent sign or backslash), no hidden characters (the URL is ASCII, or
# holds none of them: a path with "impôt" or "é"), no tab or newline and nothing to strip
# at either end. Such a URL is absolute whatever the base, and its flags are its host's:
# the general path below would give the same answer (tests/text/test_url_fast_path.py
# checks it).
# (Lower-case scheme only: a case-insensitive group costs three times the match; other
# spellings take the general path.)
_SIMPLE_RE = re.compile(r"https?://([a-zA-Z0-9.-]{1,255})(?=[/?#]|\Z)")
# The same without a scheme, for text forms read with ``assume_http`` (a plain host cannot
# be read as a scheme: it holds no ":").
_SIMPLE_BARE_RE = re.compile(r"([a-zA-Z0-9.-]{1,255})(?=[/?#]|\Z)")
_NO_SCHEME = frozenset({LinkFlag.NO_SCHEME})
_HIDDEN = INVISIBLE_CHARS | BIDI_CHARS  # what _clean flags and removes


def parse_url(raw: str, base: str = "", *, assume_http: bool = False) -> ParsedUrl:
    """Parse ``raw`` as a browser would; resolve it against ``base`` when relative.

    ``assume_http`` prefixes ``http://`` to scheme-less text forms (``www.x.fr/a``).
    Never raises on malformed input.
    """
    fields = read_url(raw, base, assume_http)
    return fields if isinstance(fields, ParsedUrl) else _new_parsed(fields)


UrlFields = tuple[str, str, str, str, str, frozenset[LinkFlag], tuple[int, int]]
"""The fields of a :class:`ParsedUrl`, in order, as a plain tuple."""


def read_url(raw: str, base: str = "", assume_http: bool = False) -> UrlFields:
    """:func:`parse_url`'s reading, its fields in a plain tuple (a :class:`ParsedUrl` when
    the general path read it), for a caller that unpacks it at once (the link extractor):
    the named tuple costs more to build than the one-match reading of a common link.
    The one-match path (see _SIMPLE_RE) is read here, in the one call a link makes;
    anything else by :func:`_parse_general`."""
    # Nothing for _clean to do on text without hidden characters starting with a host
    # character: no tab or newline, no C0 control or space at the end.
    if (
        (raw.isascii() or _HIDDEN.isdisjoint(raw))
        and raw[-1:] > " "
        and "\t" not in raw
        and "\n" not in raw
        and "\r" not in raw
    ):
        # The scheme and host, up to the first "/", read once per message stream: the
        # links of a newsletter share a few (trackers, images, the site).
        if raw.startswith("https://"):
            slash = raw.find("/", 8)
        elif raw.startswith("http://"):
            slash = raw.find("/", 7)
        else:
            slash = 0
        if slash:
            head = raw if slash < 0 else raw[:slash]
            if len(head) <= _CACHED_HEAD_CHARS and (read := _plain_head(head)) is not None:
                return (raw,) + read  # noqa: RUF005 (a star builds a list)
        simple = _SIMPLE_RE.match(raw)
        if simple is not None:
            host, span = simple.group(1), simple.span(1)
            unicode_host, ascii_host, flags = _host_forms_of(host, True)
            scheme = "https" if span[0] == 8 else "http"
            return raw, scheme, unicode_host, ascii_host, "", flags, span
        if assume_http and (simple := _SIMPLE_BARE_RE.match(raw)) is not None:
            host = simple.group(1)  # "www.x.fr/a": read as "http://www.x.fr/a"
            unicode_host, ascii_host, flags = _host_forms_of(host, True)
            span = (7, 7 + len(host))
            target = "http://" + raw
            return target, "http", unicode_host, ascii_host, "", flags | _NO_SCHEME, span
    return _parse_general(raw, base, assume_http)


_new_parsed = functools.partial(tuple.__new__, ParsedUrl)
_CACHED_HEAD_CHARS = len("https://") + _CACHED_HOST_CHARS


@functools.lru_cache(maxsize=8192)
def _plain_head(
    head: str,
) -> tuple[str, str, str, str, frozenset[LinkFlag], tuple[int, int]] | None:
    """What :func:`parse_url` reads of a URL whose text up to its first ``/`` (or all of
    it) is ``head``, an ``http(s)://`` and a plain host (the one-match path): every field
    but the target; None for any other head (with "?", "#", "@", ":", "%", "\\", ...)."""
    simple = _SIMPLE_RE.fullmatch(head)
    if simple is None:
        return None
    host, span = simple.group(1), simple.span(1)
    unicode_host, ascii_host, flags = _host_forms_of(host, True)
    return ("https" if span[0] == 8 else "http", unicode_host, ascii_host, "", flags, span)


def _parse_general(raw: str, base: str, assume_http: bool) -> ParsedUrl:
    """:func:`parse_url` for every input (the reference for the one-match path)."""
    flags: set[LinkFlag] = set()
    text = _clean(raw, flags)
    absolute = _absolute(text, base, assume_http, flags)
    if absolute is None:
        flags.add(LinkFlag.RELATIVE)
        return ParsedUrl(text, "", "", "", "", frozenset(flags))
    match = _SCHEME_RE.match(absolute)
    if match is None:
        flags.add(LinkFlag.RELATIVE)
        return ParsedUrl(absolute, "", "", "", "", frozenset(flags))
    return _parse_absolute(absolute, match.group(1).lower(), match.end(), flags)


def _parse_absolute(text: str, scheme: str, end: int, flags: set[LinkFlag]) -> ParsedUrl:
    userinfo = host = ""
    if scheme == "javascript":
        flags.add(LinkFlag.JAVASCRIPT)
    elif scheme == "data":
        flags.add(LinkFlag.DATA_URI)
    elif scheme == "mailto":
        flags.add(LinkFlag.MAILTO)
        userinfo, host = _mailto_host(text[end:])
        return ParsedUrl(text, scheme, to_unicode(host), to_ascii(host), userinfo, frozenset(flags))
    special = scheme in _SPECIAL
    span = _special_authority(text, end) if special else _plain_authority(text, end)
    if span is None:
        return ParsedUrl(text, scheme, "", "", "", frozenset(flags))
    if span.backslash:
        flags.add(LinkFlag.BACKSLASH)
    authority = text[span.start : span.end]
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        flags.add(LinkFlag.USERINFO)
    raw_host = _split_hostport(hostport, flags)
    if special and not raw_host:
        flags.add(LinkFlag.INVALID)
    unicode_host, ascii_host = _host_forms(raw_host, special, flags) if raw_host else ("", "")
    return ParsedUrl(
        text, scheme, unicode_host, ascii_host, userinfo, frozenset(flags), (span.start, span.end)
    )


def host_of(url: str) -> str:
    """The host (Unicode form) a browser would contact for ``url``; "" when it has none."""
    return parse_url(url).host


_BARE_DOT = re.compile(r"(?<!\[)\.(?!\])")


def bracket_dots(host: str) -> str:
    """``a.b`` → ``a[.]b``; dots already bracketed stay as they are (idempotent)."""
    return _BARE_DOT.sub("[.]", host)


def defang_url(url: str) -> str:
    """``https://a.b/c`` → ``hxxps://a[.]b/c``: scheme neutralised, authority dots bracketed.

    The authority is the one :func:`parse_url` reads, so the host shown is the host a
    browser would have contacted. Already defanged input is returned unchanged.
    """
    text = _clean(url, set())
    match = _SCHEME_RE.match(text)
    if match is None:  # a written host (www.x.fr/a): the authority is what comes first
        head = _special_authority(text, 0)
        return text[: head.start] + bracket_dots(text[head.start : head.end]) + text[head.end :]
    scheme = match.group(1).lower()
    span = (
        _special_authority(text, match.end())
        if scheme in _SPECIAL
        else _plain_authority(text, match.end())
    )
    new_scheme = _DEFANG_SCHEMES.get(scheme, match.group(1))
    if span is None:  # opaque (mailto:x@y.fr): dots bracketed up to the query
        rest = text[match.end() :]
        cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        return new_scheme + ":" + bracket_dots(rest[:cut]) + rest[cut:]
    user, at, hostport = text[span.start : span.end].rpartition("@")
    authority = user + at + bracket_dots(hostport)
    return new_scheme + text[match.end() - 1 : span.start] + authority + text[span.end :]

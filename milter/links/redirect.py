"""Unwrap redirector and click-tracker URLs from the URL text alone (never fetched).

Callers should judge *every* URL of :attr:`Unwrapped.chain`, not only the innermost one:
a tracker parameter can also point to an innocent site to hide the outer host.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from typing import NamedTuple, Protocol
from urllib.parse import parse_qsl, unquote

from milter.text.url import ParsedUrl, parse_url

__all__ = ["Unwrapped", "carries_nothing", "may_carry", "unwrap", "unwrap_once"]

#: Query parameters that conventionally carry the destination of a redirector.
TARGET_PARAMS = (
    "url",
    "u",
    "q",
    "target",
    "redirect",
    "redirect_url",
    "redirecturl",
    "redirect_uri",
    "redir",
    "dest",
    "destination",
    "link",
    "goto",
    "to",
    "out",
    "next",
    "continue",
    "return",
    "returnurl",
    "r",
    "rurl",
    "href",
    "l",
)
_RuleBody = Callable[[str, list[tuple[str, str]]], str | None]  # (path, params) -> target
_MAX_URL = 16_384
_B64_RE = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_EMBEDDED_RE = re.compile(r"(?i)(?:https?|hxxps?)(?::|%3a)(?://|%2f%2f)")
_URLDEFENSE_V3_RE = re.compile(r"(?i)https?://urldefense\.com/v3/__(.+?)__;([A-Za-z0-9_=-]*)")
_URL_STARTS = ("http://", "https://", "hxxp://", "hxxps://", "//", "www.")
_URL_STARTS_BYTES = tuple(start.encode() for start in _URL_STARTS)
# The first base64 character of text starting with h, H, w, W or "/" (what every
# _URL_STARTS begins with, in any case; no non-ASCII character lower-cases into these).
_B64_URL_FIRST = frozenset("aSdVL")
_TARGET_RANK = {name: rank for rank, name in enumerate(TARGET_PARAMS)}


class Unwrapped(NamedTuple):
    """Outcome of :func:`unwrap`.

    ``chain`` lists the URLs from the original to the innermost; ``rules`` names the
    rule used at each step (``len(rules) == len(chain) - 1``); ``final`` is
    :func:`~milter.text.url.parse_url`'s reading of ``url`` (already made on the way);
    ``depth_exceeded`` is set when unwrapping stopped at the depth limit while another
    layer was still present.
    """

    url: str
    chain: tuple[str, ...]
    rules: tuple[str, ...]
    final: ParsedUrl
    depth_exceeded: bool = False


def _looks_like_url(value: str) -> bool:
    low = value[:12].lower()
    return low.startswith(_URL_STARTS)


def _b64_url(value: str) -> str | None:
    """Decode base64 / base64url text that encodes an http(s) URL."""
    if value[:1] not in _B64_URL_FIRST or not _B64_RE.fullmatch(value):
        return None
    text = value.rstrip("=").replace("+", "-").replace("/", "_")
    # Most such values are slugs and ids, not base64: the first 12 bytes must already
    # start like a URL (ASCII; no other character lower-cases into those), so decode
    # them alone first.
    if len(text) > 16 and not _b64_head(text[:16]).lower().startswith(_URL_STARTS_BYTES):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded if _looks_like_url(decoded) and decoded.isprintable() else None


def _b64_head(head: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(head)
    except (binascii.Error, ValueError):
        return b""


def _param_url(value: str) -> str | None:
    """Return the URL carried by a query value (plain, percent-encoded twice, or base64)."""
    for candidate in (value, unquote(value)):
        if _looks_like_url(candidate):
            return candidate
    return _b64_url(value)


def _bing(path: str, params: list[tuple[str, str]]) -> str | None:
    if not path.startswith("/ck/"):
        return None
    for name, value in params:
        if name == "u" and value.startswith("a1"):
            return _b64_url(value[2:])
    return None


def _named(paths: tuple[str, ...], names: tuple[str, ...]) -> _RuleBody:
    def rule(path: str, params: list[tuple[str, str]]) -> str | None:
        if paths and not path.startswith(paths):
            return None
        for name, value in params:
            if name.lower() in names and _looks_like_url(value):
                return value
        return None

    return rule


def _urldefense_v2(path: str, params: list[tuple[str, str]]) -> str | None:
    if not path.startswith(("/v1/", "/v2/")):
        return None
    for name, value in params:
        if name == "u":
            decoded = value if path.startswith("/v1/") else value.replace("_", "/")
            decoded = unquote(decoded.replace("-", "%")) if path.startswith("/v2/") else decoded
            return decoded if _looks_like_url(decoded) else None
    return None


def _urldefense_v3(url: str) -> str | None:
    """``https://urldefense.com/v3/__<url>__;<b64 of replaced chars>!!...``"""
    match = _URLDEFENSE_V3_RE.match(url)
    if match is None:
        return None
    inner, blob = match.group(1), match.group(2)
    if "*" in inner:
        try:
            chars = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        if "**" in inner or inner.count("*") != len(chars):
            return None  # run-length form: not worth guessing
        out = iter(chars)
        inner = re.sub(r"\*", lambda _m: next(out), inner)
    return inner if _looks_like_url(inner) else None


def _embedded(host: str, path: str) -> str | None:
    """A URL embedded in the path (awstrack.me ``/L0/https:%2F%2F…``, ``/redirect/https://…``)."""
    match = _EMBEDDED_RE.search(path, 1)
    if match is None:
        return None
    raw = path[match.start() :]
    if "awstrack.me" in host and "/" in raw:
        raw = raw.split("/", 1)[0]  # /L0/<encoded target>/1/<message id>/<signature>
    return unquote(raw) if "%" in raw[:12] else raw


def _params(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``; split by hand when there is nothing
    to decode (no ``%``, no ``+``), which is most tracking queries."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    return [(name, value) for name, _, value in (p.partition("=") for p in query.split("&") if p)]


def _generic(params: list[tuple[str, str]]) -> str | None:
    named = [(rank, v) for n, v in params if (rank := _TARGET_RANK.get(n.lower())) is not None]
    for _, value in sorted(named, key=lambda rv: rv[0]):
        found = _param_url(value)
        if found:
            return found
    for _, value in params:
        if value[:8].lower().startswith(("http://", "https://")):
            return value
    return None


class _Rule(NamedTuple):
    """A redirector known by its host: ``body(path, params)`` reads its target."""

    name: str
    host: re.Pattern[str]
    body: _RuleBody


_RULES = (
    _Rule("bing-ck", re.compile(r"(?:^|\.)bing\.com\Z"), _bing),
    _Rule(
        "google-url",
        re.compile(r"(?:^|\.)google\.(?:[a-z]{2,3}\.)?[a-z]{2,3}$"),
        _named(("/url",), ("q", "url")),
    ),
    _Rule(
        "safelinks",
        re.compile(r"(?:^|\.)safelinks\.protection\.outlook\.com$"),
        _named((), ("url",)),
    ),
    _Rule("urldefense-v2", re.compile(r"urldefense\.proofpoint\.com\Z"), _urldefense_v2),
)
_CACHED_HOST_CHARS = 255  # longer hosts are matched every time (bounded memory)


def _host_rules(host: str) -> tuple[_Rule, ...]:
    """The rules whose host ``host`` is (most hosts: none), cached per host."""
    return _host_rules_of(host) if len(host) <= _CACHED_HOST_CHARS else _rules_for(host)


def _rules_for(host: str) -> tuple[_Rule, ...]:
    return tuple(rule for rule in _RULES if rule.host.search(host))


_host_rules_of = functools.lru_cache(maxsize=4096)(_rules_for)


# What a query must hold for a value to carry a URL (:func:`_generic`): a URL start
# ("//" is in all but "www.", which is matched lower-cased as _looks_like_url does), or
# "=" and the first two characters of a base64 URL (h/H then t/T/x/X, w/W then w/W, "/"
# then "/" encode as aH aF SH SF, d3 d1 V3 V1, Ly; see _b64_url).
_B64_START_RE = re.compile(r"=(?:[aS][HF]|[dV][13]|Ly)")


def _may_carry(query: str) -> bool:
    return "//" in query or "www." in query.lower() or _B64_START_RE.search(query) is not None


class Reading(Protocol):
    """What :func:`carries_nothing` reads of a URL: a :class:`ParsedUrl`, or a link
    (:class:`~milter.links.extract.Link`) holding the same reading."""

    @property
    def target(self) -> str: ...

    @property
    def host_ascii(self) -> str: ...

    @property
    def authority(self) -> tuple[int, int]: ...


# The path up to its first "#", "?", ":" or "%": what ends it says whether the link can
# carry a URL (a query, or a ":" or "%" in the path where an embedded scheme could be).
# Read with one match only on links with at most _PLAIN_PATH_CHARS after the authority:
# the match reads ~8 ns a character, carries_nothing's finds ~20x less (they cost less
# from ~130 on). The class is [^#?:%] spelled as the ranges between those four: the
# regex engine tests a positive class in 27 instructions a character, the negated one
# in 42.
_PATH_STOP_RE = re.compile(r"[\x00-\x22\x24\x26-\x39\x3b-\x3e\x40-\U0010ffff]*+")
_PLAIN_PATH_CHARS = 128
_HTTP_STARTS = ("http://", "https://")


def may_carry(reading: Reading) -> bool:
    """False when :func:`unwrap_once` of ``reading.target`` (with that reading) is None
    for certain: not an http(s) URL, too long, or :func:`carries_nothing`. Takes a link
    as it is (no :class:`ParsedUrl` is built for the links that carry nothing). A short
    link's path is read with one match: its end (the end of the URL, a fragment, a query,
    or a ``:`` or ``%`` in the path) answers as :func:`carries_nothing` would, and a
    query is read from there."""
    url = reading.target
    if len(url) > _MAX_URL or not (
        url.startswith(_HTTP_STARTS) or url[:8].lower().startswith(_HTTP_STARTS)
    ):
        return False
    after = reading.authority[1]
    if len(url) - after > _PLAIN_PATH_CHARS:
        return not carries_nothing(reading)
    host = reading.host_ascii
    if host == "urldefense.com":
        return True  # carries_nothing's first answer
    found = _PATH_STOP_RE.match(url, after)
    assert found is not None  # the pattern matches the empty string
    stop = found.end()
    if stop == len(url):
        return False  # a plain path, no query
    mark = url[stop]
    if mark == "?":
        return not _query_carries_nothing(url, host, stop)
    return mark != "#"  # a plain path then the fragment; else ":" or "%" in the path


def carries_nothing(parsed: Reading) -> bool:
    """True when :func:`unwrap_once` would find no URL inside ``parsed`` (most links):
    its host is no known redirector's, its path has neither ``:`` nor ``%`` (an embedded
    scheme needs one), and its query, decoded the way the parameters are read (twice,
    for double-encoded values), holds no URL start nor base64 URL start. False means "maybe"."""
    target, host = parsed.target, parsed.host_ascii
    after = parsed.authority[1]
    if host == "urldefense.com":
        return False
    fragment = target.find("#", after)
    if fragment < 0:
        fragment = len(target)
    question = target.find("?", after, fragment)
    path_end = fragment if question < 0 else question
    if target.find(":", after, path_end) >= 0 or target.find("%", after, path_end) >= 0:
        return False
    if question < 0:
        return True  # no query: only the path could have carried one
    return _query_carries_nothing(target, host, question)


def _query_carries_nothing(target: str, host: str, question: int) -> bool:
    """:func:`carries_nothing` of a link whose path carries nothing and whose query
    starts at ``question`` (its "?", the first before any "#")."""
    fragment = target.find("#", question)
    if fragment < 0:
        fragment = len(target)
    if question + 1 == fragment:
        return True  # an empty query
    if _host_rules(host):
        return False
    query = target[question + 1 : fragment]
    if "%" not in query:  # then values are the text itself ("+" read as " " adds nothing)
        return not _may_carry(query)
    once = unquote(query.replace("+", " "))
    return not _may_carry(once) and not _may_carry(unquote(once))


def unwrap_once(url: str, parsed: ParsedUrl | None = None) -> tuple[str, str] | None:
    """Return ``(inner_url, rule)`` when ``url`` carries another URL, else None.

    The host, path and query are the ones :func:`~milter.text.url.parse_url` reads (the
    browser's), from ``parsed`` when the caller already has that reading of ``url``.
    """
    if len(url) > _MAX_URL or not url[:8].lower().startswith(("http://", "https://")):
        return None
    if parsed is None:
        parsed = parse_url(url)
    if carries_nothing(parsed):
        return None  # most links
    return _unwrap_parsed(parsed)


def _unwrap_parsed(parsed: ParsedUrl) -> tuple[str, str] | None:
    """:func:`unwrap_once` without the :func:`carries_nothing` shortcut (its reference)."""
    target, host = parsed.target, parsed.host_ascii
    path, query = parsed.path_query()
    if query:
        params = _params(query)
        for rule in _host_rules(host):
            found = rule.body(path, params)
            if found:
                return found, rule.name
    found = _urldefense_v3(target) if host == "urldefense.com" else None
    if found:
        return found, "urldefense-v3"
    found = _embedded(host, path)
    if found and _looks_like_url(found):
        return found, "awstrack" if host.endswith("awstrack.me") else "path-embedded"
    found = _generic(params) if query else None
    return (found, "query-param") if found else None


def _absolute(url: str) -> ParsedUrl:
    low = url[:6].lower()
    if low.startswith("hxxp"):
        url = "http" + url[4:]
    elif url.startswith("//"):
        url = "http:" + url
    return parse_url(url, assume_http=url[:4].lower() == "www.")


def unwrap(url: str, max_depth: int = 5, *, parsed: ParsedUrl | None = None) -> Unwrapped:
    """Unwrap nested redirectors up to ``max_depth`` layers; stops on loops.

    ``parsed`` is :func:`~milter.text.url.parse_url`'s reading of ``url`` when the caller
    already has it (a link's), so that the URL is not read twice.
    """
    current = parse_url(url) if parsed is None else parsed
    chain = [url]
    rules: list[str] = []
    for depth in range(max_depth + 1):
        step = unwrap_once(chain[-1], current)
        if step is None:
            break
        inner = _absolute(step[0])
        if inner.target in chain:
            break
        if depth == max_depth:
            return Unwrapped(chain[-1], tuple(chain), tuple(rules), current, depth_exceeded=True)
        chain.append(inner.target)
        rules.append(step[1])
        current = inner
    return Unwrapped(chain[-1], tuple(chain), tuple(rules), current)

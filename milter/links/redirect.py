"""Unwrap redirector and click-tracker URLs from the URL text alone (never fetched).

Callers should judge *every* URL of :attr:`Unwrapped.chain`, not only the innermost one:
a tracker parameter can also point to an innocent site to hide the outer host.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from milter.text.url import parse_url

__all__ = ["Unwrapped", "unwrap", "unwrap_once"]

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
_MAX_URL = 16_384
_B64_RE = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_EMBEDDED_RE = re.compile(r"(?i)(?:https?|hxxps?)(?::|%3a)(?://|%2f%2f)")
_URLDEFENSE_V3_RE = re.compile(r"(?i)https?://urldefense\.com/v3/__(.+?)__;([A-Za-z0-9_=-]*)")
_URL_STARTS = ("http://", "https://", "hxxp://", "hxxps://", "//", "www.")
_URL_STARTS_BYTES = tuple(start.encode() for start in _URL_STARTS)


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """Outcome of :func:`unwrap`.

    ``chain`` lists the URLs from the original to the innermost; ``rules`` names the
    rule used at each step (``len(rules) == len(chain) - 1``); ``depth_exceeded`` is set
    when unwrapping stopped at the depth limit while another layer was still present.
    """

    url: str
    chain: tuple[str, ...]
    rules: tuple[str, ...]
    depth_exceeded: bool = False


def _looks_like_url(value: str) -> bool:
    low = value[:12].lower()
    return low.startswith(_URL_STARTS)


def _b64_url(value: str) -> str | None:
    """Decode base64 / base64url text that encodes an http(s) URL."""
    if not _B64_RE.fullmatch(value):
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


def _bing(host: str, path: str, params: list[tuple[str, str]]) -> str | None:
    if not (host == "bing.com" or host.endswith(".bing.com")) or not path.startswith("/ck/"):
        return None
    for name, value in params:
        if name == "u" and value.startswith("a1"):
            return _b64_url(value[2:])
    return None


def _named(
    host_re: str, paths: tuple[str, ...], names: tuple[str, ...]
) -> Callable[[str, str, list[tuple[str, str]]], str | None]:
    pattern = re.compile(host_re)

    def rule(host: str, path: str, params: list[tuple[str, str]]) -> str | None:
        if not pattern.search(host):
            return None
        if paths and not path.startswith(paths):
            return None
        for name, value in params:
            if name.lower() in names and _looks_like_url(value):
                return value
        return None

    return rule


def _urldefense_v2(host: str, path: str, params: list[tuple[str, str]]) -> str | None:
    if not host.endswith("urldefense.proofpoint.com") or not path.startswith(("/v1/", "/v2/")):
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


def _embedded(parts: SplitResult) -> str | None:
    """A URL embedded in the path (awstrack.me ``/L0/https:%2F%2F…``, ``/redirect/https://…``)."""
    match = _EMBEDDED_RE.search(parts.path, 1)
    if match is None:
        return None
    raw = parts.path[match.start() :]
    if "awstrack.me" in (parts.hostname or "") and "/" in raw:
        raw = raw.split("/", 1)[0]  # /L0/<encoded target>/1/<message id>/<signature>
    return unquote(raw) if "%" in raw[:12] else raw


def _generic(params: list[tuple[str, str]]) -> str | None:
    named = [(n.lower(), v) for n, v in params if n.lower() in TARGET_PARAMS]
    for _, value in sorted(named, key=lambda nv: TARGET_PARAMS.index(nv[0])):
        found = _param_url(value)
        if found:
            return found
    for _, value in params:
        if value[:8].lower().startswith(("http://", "https://")):
            return value
    return None


_RULES: tuple[tuple[str, Callable[[str, str, list[tuple[str, str]]], str | None]], ...] = (
    ("bing-ck", _bing),
    (
        "google-url",
        _named(r"(?:^|\.)google\.(?:[a-z]{2,3}\.)?[a-z]{2,3}$", ("/url",), ("q", "url")),
    ),
    ("safelinks", _named(r"(?:^|\.)safelinks\.protection\.outlook\.com$", (), ("url",))),
    ("urldefense-v2", _urldefense_v2),
)


def unwrap_once(url: str) -> tuple[str, str] | None:
    """Return ``(inner_url, rule)`` when ``url`` carries another URL, else None."""
    if len(url) > _MAX_URL or not url[:8].lower().startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host, path = (parts.hostname or "").lower(), parts.path
    params = parse_qsl(parts.query, keep_blank_values=True) if parts.query else []
    for name, rule in _RULES:
        found = rule(host, path, params)
        if found:
            return found, name
    found = _urldefense_v3(url)
    if found:
        return found, "urldefense-v3"
    found = _embedded(parts)
    if found and _looks_like_url(found):
        return found, "awstrack" if host.endswith("awstrack.me") else "path-embedded"
    found = _generic(params)
    return (found, "query-param") if found else None


def _absolute(url: str) -> str:
    low = url[:6].lower()
    if low.startswith("hxxp"):
        url = "http" + url[4:]
    elif url.startswith("//"):
        url = "http:" + url
    return parse_url(url, assume_http=url[:4].lower() == "www.").target


def unwrap(url: str, max_depth: int = 5) -> Unwrapped:
    """Unwrap nested redirectors up to ``max_depth`` layers; stops on loops."""
    chain = [url]
    rules: list[str] = []
    for depth in range(max_depth + 1):
        step = unwrap_once(chain[-1])
        if step is None:
            break
        inner = _absolute(step[0])
        if inner in chain:
            break
        if depth == max_depth:
            return Unwrapped(chain[-1], tuple(chain), tuple(rules), depth_exceeded=True)
        chain.append(inner)
        rules.append(step[1])
    return Unwrapped(chain[-1], tuple(chain), tuple(rules))

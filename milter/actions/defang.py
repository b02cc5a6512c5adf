"""Defang dangerous links, and sign/verify redirect URLs.

``defang_url`` keeps the real host readable but no longer clickable nor auto-linked
(``hxxps://ameli-remboursement[.]fr/…``). The HTML variant edits only the matching
``<a href>`` attributes and visible URLs in text; every other byte stays as it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
from collections.abc import Collection
from urllib.parse import urlencode

_SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}
_URL = re.compile(r"""(?i)\b(?:https?|ftp)://[^\s<>"'`]+""")
_AUTHORITY = re.compile(r"(?i)^(?P<scheme>[a-z][a-z0-9+.-]*:)?(?P<slashes>//)?(?P<auth>[^/?#]*)")
_A_TAG = re.compile(r"""<a\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.I)
_HREF = re.compile(r"""(?P<lead>\s)href\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s>"']+)""", re.I)
_TITLE = re.compile(r"""\stitle\s*=""", re.I)
_MARKUP = re.compile(r"<!--.*?-->|<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.S)
_TRAILING = ".,;:!?)]}'\""
SIG_LEN = 32


def host_of(url: str) -> str:
    """The lower-case host of ``url`` (no userinfo, port, trailing dot); '' if none."""
    match = _AUTHORITY.match(url.strip())
    if match is None or not match.group("slashes"):
        return ""
    host = match.group("auth").rpartition("@")[2]
    if host.startswith("["):
        return host.partition("]")[0].lstrip("[").lower()
    return host.partition(":")[0].rstrip(".").lower()


def _matches(host: str, hosts: Collection[str]) -> bool:
    if not host:
        return False
    if host in hosts:
        return True
    try:
        return host.encode("idna").decode("ascii") in hosts
    except UnicodeError:
        return False


def defang_url(url: str) -> str:
    """``https://a.b/c`` → ``hxxps://a[.]b/c``: scheme neutralised, host dots bracketed."""
    match = _AUTHORITY.match(url)
    if match is None:
        return url
    scheme = match.group("scheme") or ""
    name = scheme[:-1].lower()
    new_scheme = _SCHEMES.get(name, name) + ":" if scheme else ""
    auth = match.group("auth")
    user, at, hostport = auth.rpartition("@")
    new_auth = user + at + hostport.replace(".", "[.]")
    return new_scheme + (match.group("slashes") or "") + new_auth + url[match.end() :]


def _defang_text_urls(text: str, hosts: Collection[str]) -> str:
    def fix(match: re.Match[str]) -> str:
        url = match.group(0)
        core = url.rstrip(_TRAILING)
        if not _matches(host_of(html.unescape(core)), hosts):
            return url
        return defang_url(core) + url[len(core) :]

    return _URL.sub(fix, text)


def _defang_bare_hosts(text: str, hosts: Collection[str]) -> str:
    names = sorted((h for h in hosts if "." in h), key=len, reverse=True)
    if not names:
        return text
    pattern = re.compile(
        r"(?<![\w.@/-])(?:" + "|".join(re.escape(h) for h in names) + r")(?![\w-]|\.[\w-])",
        re.I,
    )
    return pattern.sub(lambda m: m.group(0).replace(".", "[.]"), text)


def defang_links_text(text: str, hosts: Collection[str]) -> str:
    """Defang URLs and bare host names in plain text whose host is in ``hosts``."""
    wanted = {h.lower().rstrip(".") for h in hosts}
    return _defang_bare_hosts(_defang_text_urls(text, wanted), wanted)


def _defang_tag(tag: str, hosts: Collection[str]) -> str:
    href = _HREF.search(tag)
    if href is None:
        return tag
    value = href.group("value").strip("\"'")
    url = html.unescape(value).strip()
    if not _matches(host_of(url), hosts):
        return tag
    attr = "data-tocsin-defanged" if _TITLE.search(tag) else "title"
    safe = html.escape(defang_url(url), quote=True)
    return tag[: href.start()] + f'{href.group("lead")}{attr}="{safe}"' + tag[href.end() :]


def defang_links_html(document: str, hosts: Collection[str]) -> str:
    """Neutralise ``<a href>`` and visible URLs whose host is in ``hosts``.

    The matching ``href`` attribute becomes a ``title`` holding the defanged URL (or
    ``data-tocsin-defanged`` when the tag already has a title); the link text stays.
    Text between tags is defanged like plain text. All other bytes are unchanged.
    """
    wanted = {h.lower().rstrip(".") for h in hosts}
    out: list[str] = []
    pos = 0
    for match in _MARKUP.finditer(document):
        out.append(defang_links_text(document[pos : match.start()], wanted))
        token = match.group(0)
        out.append(_defang_tag(token, wanted) if _A_TAG.fullmatch(token) else token)
        pos = match.end()
    out.append(defang_links_text(document[pos:], wanted))
    return "".join(out)


def _sign(original: str, key: bytes) -> str:
    digest = hmac.new(key, original.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return digest.hexdigest()[:SIG_LEN]


def redirect_url(original: str, base_url: str, key: bytes) -> str:
    """``base_url?u=<urlsafe b64, unpadded>&s=<HMAC-SHA256 hex, 32 chars>``."""
    encoded = base64.urlsafe_b64encode(original.encode("utf-8", "surrogatepass"))
    query = urlencode({"u": encoded.rstrip(b"=").decode("ascii"), "s": _sign(original, key)})
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"


def verify_redirect(query_u: str, query_s: str, key: bytes) -> str | None:
    """The original URL when ``s`` is the valid signature of ``u``, else None."""
    try:
        data = base64.urlsafe_b64decode(query_u + "=" * (-len(query_u) % 4))
        original = data.decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return None
    if len(query_s) != SIG_LEN or not query_s.isascii():
        return None
    if not hmac.compare_digest(_sign(original, key), query_s.lower()):
        return None
    return original

"""URL string helpers for link rewriting: the host of a URL, and its defanged form."""

from __future__ import annotations

import re

_SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}
_AUTHORITY = re.compile(r"(?i)^(?P<scheme>[a-z][a-z0-9+.-]*:)?(?P<slashes>//)?(?P<auth>[^/?#]*)")


def host_of(url: str) -> str:
    """The lower-case host of ``url`` (no userinfo, port, trailing dot); '' if none."""
    match = _AUTHORITY.match(url.strip())
    if match is None or not match.group("slashes"):
        return ""
    host = match.group("auth").rpartition("@")[2]
    if host.startswith("["):
        return host.partition("]")[0].lstrip("[").lower()
    return host.partition(":")[0].rstrip(".").lower()


_BARE_DOT = re.compile(r"(?<!\[)\.(?!\])")


def bracket_dots(host: str) -> str:
    """``a.b`` → ``a[.]b``; dots already bracketed stay as they are (idempotent)."""
    return _BARE_DOT.sub("[.]", host)


def defang_url(url: str) -> str:
    """``https://a.b/c`` → ``hxxps://a[.]b/c``: scheme neutralised, host dots bracketed.

    Already defanged input is returned unchanged (``[.]`` holds no bare dot to bracket).
    """
    match = _AUTHORITY.match(url)
    if match is None:
        return url
    scheme = match.group("scheme") or ""
    name = scheme[:-1].lower()
    new_scheme = _SCHEMES.get(name, name) + ":" if scheme else ""
    user, at, hostport = match.group("auth").rpartition("@")
    new_auth = user + at + bracket_dots(hostport)
    return new_scheme + (match.group("slashes") or "") + new_auth + url[match.end() :]

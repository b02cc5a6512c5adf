"""Signed redirects to the admin's warning page, so the page is no open redirector.

The link becomes ``base_url?u=<original, urlsafe base64 unpadded>&s=<signature>``, the
signature being the first 32 hex digits of HMAC-SHA256(key, original). The warning
page verifies with :func:`verify_redirect` before offering the original link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import urlencode

SIG_LEN = 32


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

"""Release tokens: released mail passes the filter again without being held again.

``release()`` adds ``X-Tocsin-Release-Token: <id>; exp=<unix time>; mac=<hex>`` where
``mac`` is HMAC-SHA256 (key: the store's ``release_key()``) over the id, the expiry and
the sorted, lower-cased envelope recipients. When the released copy comes back through
the filter (a relay port that runs the milter), ``honour_release`` turns a quarantine or
reject verdict into ``tag``: the recipient still sees Tocsin's warning, the message is
delivered. A sender cannot forge the token without the key; a copied token only works
for the same recipients until it expires (``TOKEN_LIFETIME``).

Which keys are trusted: every store opened in this process registers its key with
``trust_key`` (the milter opens its store at start), so the engine needs no settings.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from milter.model.envelope import Envelope
from milter.model.verdict import Disposition, Reason, Verdict
from milter.quarantine.headers import header_value

TOKEN_HEADER = "X-Tocsin-Release-Token"
TOKEN_LIFETIME = timedelta(days=2)
RELEASED_RULE = "released_from_quarantine"
_TOKEN = re.compile(
    r"(?P<qid>[0-9]{8}T[0-9]{12}Z-[0-9a-f]{12});"
    r" exp=(?P<exp>[0-9]{1,12}); mac=(?P<mac>[0-9a-f]{64})"
)
_keys: list[bytes] = []
_keys_lock = threading.Lock()


def trust_key(key: bytes) -> None:
    """Accept tokens signed with ``key`` in this process (idempotent)."""
    with _keys_lock:
        if key not in _keys:
            _keys.append(key)


def _mac(key: bytes, qid: str, expires: int, rcpts: Iterable[str]) -> str:
    text = "\n".join((qid, str(expires), *sorted(r.lower() for r in rcpts)))
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def make_token(key: bytes, qid: str, rcpts: Iterable[str], now: datetime | None = None) -> str:
    """The header value for releasing ``qid`` to ``rcpts``."""
    expires = int(((now or datetime.now(UTC)) + TOKEN_LIFETIME).timestamp())
    return f"{qid}; exp={expires}; mac={_mac(key, qid, expires, rcpts)}"


def released_id(raw: bytes, envelope: Envelope, now: datetime | None = None) -> str | None:
    """The quarantine id of a valid, unexpired token in ``raw`` for these recipients."""
    match = _TOKEN.fullmatch(header_value(raw, TOKEN_HEADER))
    if match is None:
        return None
    expires = int(match.group("exp"))
    if expires < (now or datetime.now(UTC)).timestamp():
        return None
    qid = match.group("qid")
    with _keys_lock:
        keys = list(_keys)
    for key in keys:
        if hmac.compare_digest(_mac(key, qid, expires, envelope.rcpts), match.group("mac")):
            return qid
    return None


def honour_release(verdict: Verdict, raw: bytes, envelope: Envelope) -> Verdict:
    """``verdict``, turned into ``tag`` when ``raw`` carries a valid release token and
    the verdict would hold or refuse it again (called by ``engine.pipeline.scan``)."""
    if verdict.disposition not in (Disposition.QUARANTINE, Disposition.REJECT):
        return verdict
    qid = released_id(raw, envelope)
    if qid is None:
        return verdict
    reason = Reason(
        RELEASED_RULE,
        Disposition.TAG,
        f"released from quarantine {qid} by an administrator (verdict was {verdict.disposition})",
    )
    return replace(verdict, disposition=Disposition.TAG, reasons=(reason, *verdict.reasons))

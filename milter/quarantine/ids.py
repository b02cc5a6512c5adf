"""Quarantine ids: time-ordered, random-suffixed, and strictly validated.

An id looks like ``20261123T101502123456Z-9f2c4e1a7b3d``: the UTC receive time to the
microsecond, then 48 random bits. Ids of one length sort lexically in time order, and
several processes writing in the same microsecond do not collide (the store still
refuses to overwrite). Ids are the only user input that becomes a file name, so
``validate_id`` accepts nothing but this exact shape: no separators, no dots, no
traversal.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from milter.quarantine.errors import InvalidQuarantineId

_ID = re.compile(r"(?P<stamp>[0-9]{8}T[0-9]{12})Z-(?P<rand>[0-9a-f]{12})")
_STAMP = "%Y%m%dT%H%M%S%f"


def new_id(received_at: datetime) -> str:
    """A fresh id for a message received at ``received_at`` (an aware datetime)."""
    stamp = received_at.astimezone(UTC).strftime(_STAMP)
    return f"{stamp}Z-{secrets.token_hex(6)}"


def validate_id(text: str) -> str:
    """Return ``text`` if it is a well-formed id, else raise InvalidQuarantineId."""
    if not isinstance(text, str) or _ID.fullmatch(text) is None:
        raise InvalidQuarantineId(f"not a quarantine id: {text!r}")
    try:
        id_time(text)
    except ValueError:
        raise InvalidQuarantineId(f"not a quarantine id (bad date): {text!r}") from None
    return text


def is_id(text: str) -> bool:
    """True when ``text`` has the shape of an id (no date check; for directory scans)."""
    return _ID.fullmatch(text) is not None


def id_time(qid: str) -> datetime:
    """The UTC receive time encoded in ``qid``."""
    match = _ID.fullmatch(qid)
    if match is None:
        raise ValueError(qid)
    return datetime.strptime(match.group("stamp"), _STAMP).replace(tzinfo=UTC)

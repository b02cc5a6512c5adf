"""Password hashes for review-page users: scrypt (stdlib ``hashlib.scrypt``).

Format: ``scrypt$<log2 n>$<r>$<p>$<salt, base64>$<hash, base64>`` — self-describing, so
the cost can be raised later without invalidating existing hashes. scrypt is memory-hard
(OWASP lists it beside argon2id) and needs no extra dependency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

LOG2_N, R, P = 15, 8, 1
_MAXMEM = 64 * 1024 * 1024
_MAX_PASSWORD = 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=1 << log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=32
    )


def hash_password(password: str) -> str:
    """A new hash of ``password`` with a random salt."""
    if not password or len(password) > _MAX_PASSWORD:
        raise ValueError("a password must have 1 to 1024 characters")
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, LOG2_N, R, P)
    return f"scrypt${LOG2_N}${R}${P}${_b64(salt)}${_b64(digest)}"


def is_hash(text: str) -> bool:
    """True when ``text`` has the shape of a hash made by ``hash_password``."""
    parts = text.split("$")
    return len(parts) == 6 and parts[0] == "scrypt" and all(x.isdigit() for x in parts[1:4])


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for a wrong or malformed hash."""
    if not is_hash(stored) or len(password) > _MAX_PASSWORD:
        return False
    _, log2_n, r, p, salt, digest = stored.split("$")
    if not (10 <= int(log2_n) <= 20 and 1 <= int(r) <= 32 and 1 <= int(p) <= 16):
        return False
    try:
        expected = base64.b64decode(digest, validate=True)
        actual = _derive(
            password, base64.b64decode(salt, validate=True), int(log2_n), int(r), int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


DUMMY_HASH = hash_password(secrets.token_urlsafe(12))
"""Checked against when the user does not exist, so timing does not reveal user names."""

"""dkimpy's key-record parse, cached across messages.

dkimpy parses the key record again for every signature it verifies
(``dkim.load_pk_from_dns`` → ``dkim.evaluate_pk``: tag list, base64, and for RSA an
ASN.1 walk in pure Python), although the same few keys sign message after message and
DKIM and ARC often check several signatures under one key in a single message.
``evaluate_pk`` below is dkimpy's own function behind a bounded cache keyed by the
record text (the function's result depends on nothing else: the name only appears in the
"missing public key" error, and errors are not cached). ``install`` puts it in ``dkim``'s
namespace, where ``load_pk_from_dns`` looks it up at call time. The parsed key (a dict of
integers, or PyNaCl's ``VerifyKey``) is only read by dkimpy, so sharing it is safe.
tests/auth/test_dkimpy_fast.py checks verdicts against dkimpy without it.
"""

from __future__ import annotations

import functools
from typing import Any

import dkim

__all__ = ["KEY_CACHE_SIZE", "evaluate_pk", "install", "original_evaluate_pk"]

KEY_CACHE_SIZE = 1024  # key records kept (a few KB each at most)
original_evaluate_pk = dkim.evaluate_pk


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _parsed(record: bytes | str) -> tuple[Any, ...]:
    return tuple(original_evaluate_pk(b"", record))


def evaluate_pk(name: bytes, record: bytes | str | None) -> tuple[Any, ...]:
    """``dkim.evaluate_pk``: (public key, bits, key type, tlsrpt service), cached."""
    if not record:
        return tuple(original_evaluate_pk(name, record))  # raises "missing public key: name"
    return _parsed(record)


def install() -> None:
    """Put the cached function in ``dkim`` (idempotent; milter.auth.dkim calls it)."""
    dkim.evaluate_pk = evaluate_pk

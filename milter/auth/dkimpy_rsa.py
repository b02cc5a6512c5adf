"""dkimpy's RSA verification: OpenSSL first (through ``cryptography``), dkimpy's own after.

dkimpy verifies RSA signatures with Python integers: ``pow`` on a 2048-bit modulus
(~0.14 ms on the benchmark machine, once per DKIM signature and twice per ARC set), and
byte/integer conversions in Python loops. Two replacements, both looked up by dkimpy at
call time in its own namespaces:

- ``rsassa_pkcs1_v1_5_verify`` replaces ``dkim.RSASSA_PKCS1_v1_5_verify``. It asks OpenSSL
  (``cryptography``, ~0.02 ms) and answers True when OpenSSL verifies the signature;
  anything else (OpenSSL says no, refuses the key, or the signature is not exactly the
  modulus's length) goes to dkimpy's own function, whose answer or exception stands. A
  True from OpenSSL is dkimpy's True: both compare the whole decrypted block with
  ``00 01 FF…FF 00 DigestInfo`` (RFC 8017 §8.2.2, §9.2) for the same modulus length, and a
  signature of the modulus's length below the modulus is the same integer for both.
  So only failing signatures pay for dkimpy's Python, and the verdict is dkimpy's.
- ``int_to_bytes`` / ``bytes_to_int`` replace ``dkim.crypto.int2str`` / ``str2int``
  (a Python loop per byte) with ``int.to_bytes`` / ``int.from_bytes``, for that fallback.

tests/auth/test_dkimpy_rsa.py compares all three with dkimpy's own on random input,
valid, tampered and malformed signatures.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import dkim
import dkim.crypto
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = [
    "KEY_CACHE_SIZE",
    "bytes_to_int",
    "install",
    "int_to_bytes",
    "openssl_verifies",
    "original_rsassa_verify",
    "rsassa_pkcs1_v1_5_verify",
]

KEY_CACHE_SIZE = 1024  # OpenSSL public keys kept, one per distinct (modulus, exponent)
original_rsassa_verify = dkim.crypto.RSASSA_PKCS1_v1_5_verify
_PREHASHED = {"sha256": Prehashed(hashes.SHA256()), "sha1": Prehashed(hashes.SHA1())}
_PKCS1 = padding.PKCS1v15()


class _Hash(Protocol):
    name: str

    def digest(self) -> bytes: ...


def int_to_bytes(n: int, length: int = -1) -> bytearray:
    """``dkim.crypto.int2str``: big-endian bytes of ``n`` — the fewest (at least one) when
    ``length`` is negative, else exactly ``length`` (higher bytes dropped, as dkimpy does)."""
    assert n >= 0
    if length < 0:
        return bytearray(n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big"))
    return bytearray((n & ((1 << (8 * length)) - 1)).to_bytes(length, "big"))


def bytes_to_int(s: bytes | bytearray) -> int:
    """``dkim.crypto.str2int``: the big-endian unsigned integer of ``s``."""
    return int.from_bytes(s, "big")


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _openssl_key(exponent: int, modulus: int) -> rsa.RSAPublicKey | None:
    """OpenSSL's public key for these numbers, or None when ``cryptography`` refuses them
    (even or tiny exponent, exponent past the modulus …): dkimpy then judges alone."""
    try:
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None


def openssl_verifies(digest: _Hash, signature: bytes, public_key: dict[str, Any]) -> bool:
    """True when OpenSSL verifies ``signature`` of ``digest`` (sha256 or sha1) under
    dkimpy's parsed ``public_key``; False for every other case, decided or not."""
    prehashed = _PREHASHED.get(digest.name.lower())
    if prehashed is None:
        return False
    key = _openssl_key(public_key["publicExponent"], public_key["modulus"])
    if key is None or len(signature) != (key.key_size + 7) // 8:
        return False
    try:
        key.verify(signature, digest.digest(), _PKCS1, prehashed)
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True


def rsassa_pkcs1_v1_5_verify(digest: _Hash, signature: bytes, public_key: dict[str, Any]) -> bool:
    """``dkim.crypto.RSASSA_PKCS1_v1_5_verify``: OpenSSL's yes, else dkimpy's answer."""
    if openssl_verifies(digest, signature, public_key):
        return True
    return bool(original_rsassa_verify(digest, signature, public_key))


def install() -> None:
    """Put the three functions in dkimpy (idempotent; milter.auth.dkim calls it)."""
    dkim.crypto.int2str = int_to_bytes
    dkim.crypto.str2int = bytes_to_int
    dkim.RSASSA_PKCS1_v1_5_verify = rsassa_pkcs1_v1_5_verify

"""dkimpy's RSA byte/integer conversions done by Python's own (C) int methods.

dkimpy verifies RSA signatures with Python integers (``pow``), which is fast, but turns
integers into bytes one byte at a time in a Python loop (``dkim.crypto.int2str``), twice per
verification (the modulus length, then the decrypted signature), and bytes into integers
the same way (``str2int``). In the load profile that loop was ~13 % of an ARC-sealed
message's authentication CPU. ``int.to_bytes`` / ``int.from_bytes`` give the same values;
they replace the two functions in ``dkim.crypto``'s namespace, where ``rsa_encrypt`` and
``RSASSA_PKCS1_v1_5_verify`` look them up at call time. tests/auth/test_dkimpy_rsa.py
compares them with dkimpy's own on random input.
"""

from __future__ import annotations

import dkim.crypto

__all__ = ["bytes_to_int", "install", "int_to_bytes"]


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


def install() -> None:
    """Put the two functions in ``dkim.crypto`` (idempotent; milter.auth.dkim calls it)."""
    dkim.crypto.int2str = int_to_bytes
    dkim.crypto.str2int = bytes_to_int

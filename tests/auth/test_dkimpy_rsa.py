"""What Tocsin puts into dkimpy's RSA verification gives exactly dkimpy's answers: the C
int conversions, and OpenSSL's verification with dkimpy's own as the fallback."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import dkim
import dkim.crypto
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

import milter.auth.dkim  # noqa: F401  (installs the replacements, as every scan does)
from milter.auth.dkimpy_rsa import (
    bytes_to_int,
    int_to_bytes,
    openssl_verifies,
    original_rsassa_verify,
    rsassa_pkcs1_v1_5_verify,
)


def _dkimpy_int2str(n: int, length: int = -1) -> bytearray:
    # dkimpy 1.1's loop, kept here as the reference
    r = bytearray()
    while length < 0 or len(r) < length:
        r.append(n & 0xFF)
        n >>= 8
        if length < 0 and n == 0:
            break
    r.reverse()
    return r


def _dkimpy_str2int(s: bytes) -> int:
    r = 0
    for c in bytearray(s):
        r = (r << 8) | c
    return r


@given(st.integers(min_value=0, max_value=2**4200), st.integers(min_value=-1, max_value=530))
def test_int_to_bytes_is_dkimpys_int2str(n: int, length: int) -> None:
    assert int_to_bytes(n, length) == _dkimpy_int2str(n, length)
    assert type(int_to_bytes(n, length)) is bytearray


@given(st.binary(max_size=600))
def test_bytes_to_int_is_dkimpys_str2int(data: bytes) -> None:
    assert bytes_to_int(data) == _dkimpy_str2int(data)


def test_dkimpy_uses_them() -> None:
    assert dkim.crypto.int2str is int_to_bytes
    assert dkim.crypto.str2int is bytes_to_int


# -- RSA verification: OpenSSL first, dkimpy's answer otherwise ------------------------


@functools.cache
def _private(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _public(key: rsa.RSAPrivateKey) -> dict[str, int]:
    numbers = key.public_key().public_numbers()
    return {"modulus": numbers.n, "publicExponent": numbers.e}  # dkimpy's parsed key


def _hash(name: str, data: bytes) -> dkim.HashThrough:
    return dkim.HashThrough(hashlib.new(name, data))


def _sign(key: rsa.RSAPrivateKey, name: str, data: bytes) -> bytes:
    algorithm = hashes.SHA256() if name == "sha256" else hashes.SHA1()
    return key.sign(data, padding.PKCS1v15(), algorithm)


def _outcome(verify: Callable[..., bool], *args: object) -> object:
    """What a verify function answers, or the type of what it raises."""
    try:
        return verify(*args)
    except Exception as exc:  # noqa: BLE001  (the exception is the answer compared)
        return type(exc)


SIGNATURE_CHANGES: dict[str, Callable[[bytes, int], bytes]] = {
    "none": lambda s, n: s,
    "bit flipped": lambda s, n: bytes([s[0] ^ 0x01]) + s[1:],
    "last bit flipped": lambda s, n: s[:-1] + bytes([s[-1] ^ 0x80]),
    "modulus added": lambda s, n: (int.from_bytes(s, "big") + n).to_bytes(len(s) + 1, "big"),
    "modulus added, same length": lambda s, n: (int.from_bytes(s, "big") + n).to_bytes(
        max(len(s), ((int.from_bytes(s, "big") + n).bit_length() + 7) // 8), "big"
    ),
    "zero byte prepended": lambda s, n: b"\x00" + s,
    "leading zero bytes dropped": lambda s, n: s.lstrip(b"\x00"),
    "truncated": lambda s, n: s[:-1],
    "empty": lambda s, n: b"",
    "all ones": lambda s, n: b"\xff" * len(s),
}


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([1024, 2048]),
    st.sampled_from(["sha256", "sha1"]),
    st.binary(max_size=64),
    st.sampled_from(sorted(SIGNATURE_CHANGES)),
    st.booleans(),  # the digest checked is of other data
)
def test_rsa_verify_is_dkimpys(
    bits: int, name: str, data: bytes, change: str, other_data: bool
) -> None:
    key = _private(bits)
    public = _public(key)
    signature = SIGNATURE_CHANGES[change](_sign(key, name, data), public["modulus"])
    checked = data + b"x" if other_data else data
    ours = _outcome(rsassa_pkcs1_v1_5_verify, _hash(name, checked), signature, public)
    theirs = _outcome(original_rsassa_verify, _hash(name, checked), signature, public)
    assert ours == theirs
    if change == "none" and not other_data:
        assert ours is True
        assert openssl_verifies(_hash(name, checked), signature, public)  # the fast path


def test_signature_plus_modulus_verifies_as_in_dkimpy() -> None:
    """dkimpy reduces a signature above the modulus (OpenSSL refuses it): the answer is
    dkimpy's, through the fallback."""
    key = _private(1024)
    public = _public(key)
    good = _sign(key, "sha256", b"corps")
    wide = (int.from_bytes(good, "big") + public["modulus"]).to_bytes(len(good) + 1, "big")
    assert not openssl_verifies(_hash("sha256", b"corps"), wide, public)
    assert original_rsassa_verify(_hash("sha256", b"corps"), wide, public) is True
    assert rsassa_pkcs1_v1_5_verify(_hash("sha256", b"corps"), wide, public) is True


def test_keys_openssl_refuses_are_judged_by_dkimpy() -> None:
    digest = _hash("sha256", b"corps")
    modulus = _public(_private(1024))["modulus"]
    encoded = dkim.crypto.EMSA_PKCS1_v1_5_encode(digest, 128)
    # exponent 1: the "signature" is the encoded digest itself; OpenSSL refuses the key
    weak = {"modulus": modulus, "publicExponent": 1}
    assert not openssl_verifies(digest, encoded, weak)
    assert rsassa_pkcs1_v1_5_verify(digest, encoded, weak) is True
    assert original_rsassa_verify(digest, encoded, weak) is True
    # a modulus too small for the digest: dkimpy's exception, not a silent False
    small = {"modulus": (1 << 383) | 1, "publicExponent": 65537}
    with pytest.raises(dkim.crypto.DigestTooLargeError):
        rsassa_pkcs1_v1_5_verify(digest, b"\x01" * 48, small)
    even = {"modulus": modulus, "publicExponent": 65536}
    assert _outcome(rsassa_pkcs1_v1_5_verify, digest, b"\x01" * 128, even) == _outcome(
        original_rsassa_verify, digest, b"\x01" * 128, even
    )


def test_dkimpy_verifies_through_openssl() -> None:
    assert dkim.RSASSA_PKCS1_v1_5_verify is rsassa_pkcs1_v1_5_verify

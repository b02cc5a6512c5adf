"""The C int conversions put into dkimpy give exactly what dkimpy's own loops give."""

from __future__ import annotations

import dkim.crypto
from hypothesis import given
from hypothesis import strategies as st

import milter.auth.dkim  # noqa: F401  (installs the conversions, as every scan does)
from milter.auth.dkimpy_rsa import bytes_to_int, int_to_bytes


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

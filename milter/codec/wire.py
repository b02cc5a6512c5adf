"""Primitive wire encodings: NUL-terminated strings, string arrays, big-endian integers.

Text is UTF-8 with ``surrogateescape``, so any byte string the MTA sends decodes to a
`str` and encodes back to the very same bytes. Helpers raise `ValueError` on bad
input; callers turn that into the right `ProtocolError`.
"""

import struct

TEXT_ENCODING = "utf-8"
TEXT_ERRORS = "surrogateescape"

UINT16 = struct.Struct("!H")
UINT32 = struct.Struct("!I")
UINT32_MAX = 0xFFFFFFFF


def to_bytes(text: str) -> bytes:
    """Encode text for the wire; raises `ValueError` if it cannot be encoded."""
    try:
        return text.encode(TEXT_ENCODING, TEXT_ERRORS)
    except UnicodeEncodeError as exc:
        raise ValueError(f"cannot encode {text!r}: {exc.reason}") from None


def to_text(raw: bytes) -> str:
    """Decode wire bytes to text; never fails."""
    return raw.decode(TEXT_ENCODING, TEXT_ERRORS)


def cstring(text: str) -> bytes:
    """Encode `text` as a NUL-terminated string."""
    raw = to_bytes(text)
    if b"\0" in raw:
        raise ValueError(f"NUL byte in {text!r}")
    return raw + b"\0"


def cstrings(*texts: str) -> bytes:
    """Encode a string array: concatenated NUL-terminated strings."""
    return b"".join(cstring(text) for text in texts)


def split_cstrings(payload: bytes) -> list[str]:
    """Decode a string array that runs to the end of `payload`."""
    if not payload:
        return []
    if not payload.endswith(b"\0"):
        raise ValueError("string array is not NUL-terminated")
    return [part.decode(TEXT_ENCODING, TEXT_ERRORS) for part in payload[:-1].split(b"\0")]


def exact_cstrings(payload: bytes, count: int) -> list[str]:
    """Decode a string array that must hold exactly `count` strings."""
    parts = split_cstrings(payload)
    if len(parts) != count:
        raise ValueError(f"expected {count} string(s), got {len(parts)}")
    return parts


def check_text(text: str, what: str) -> None:
    """Raise `ValueError` unless `text` can travel as one NUL-terminated string."""
    try:
        cstring(text)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def check_uint32(value: int, what: str) -> None:
    """Raise `ValueError` unless `value` fits an unsigned 32-bit field."""
    if not 0 <= value <= UINT32_MAX:
        raise ValueError(f"{what} {value} does not fit in 32 bits")

"""Header helpers: decode RFC 2047 words, parse addresses (fields are split by
:mod:`milter.text.headers`).

Everything here is tolerant: broken encodings are replaced, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header
from email.utils import getaddresses

from milter.text.headers import parse_fields as parse_header_block
from milter.text.headers import split_message

__all__ = [
    "Address",
    "decode_words",
    "parse_addresses",
    "parse_header_block",
    "split_message",
]


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; unknown charsets and bad bytes are replaced."""
    if "=?" not in value:
        return _clean_surrogates(value)
    try:
        chunks = decode_header(value)
    except (ValueError, LookupError, AssertionError, HeaderParseError):  # raised on garbage
        return _clean_surrogates(value)
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        out.append(_decode_bytes(chunk, charset))
    return "".join(out)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "ascii", "replace")
    except (LookupError, ValueError):  # unknown charset, a name of raw bytes or with a NUL
        return data.decode("utf-8", "replace")


def _clean_surrogates(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox of an address header: display name (decoded), address and domain."""

    display_name: str
    address: str

    @property
    def domain(self) -> str:
        """Lower-cased domain of the address, '' when there is none."""
        _, _, domain = self.address.rpartition("@")
        return domain.strip().strip(".").lower() if "@" in self.address else ""


def parse_addresses(value: str) -> tuple[Address, ...]:
    """Parse an address header (From, Reply-To, Sender) tolerantly."""
    pairs = getaddresses([value])
    return tuple(
        Address(decode_words(name).strip(), addr.strip()) for name, addr in pairs if name or addr
    )

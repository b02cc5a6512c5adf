"""Header helpers: split the raw header block, decode RFC 2047 words, parse addresses.

Everything here is tolerant: broken encodings are replaced, never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import decode_header
from email.utils import getaddresses

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\r?\n[ \t]")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """Split raw bytes into (header block, body). A message without a blank line is all
    headers when it starts with a header, else all body."""
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.end()], raw[match.end() :]


def parse_header_block(block: bytes) -> tuple[tuple[str, str], ...]:
    """Return the headers as (name, raw unfolded value) in order; junk lines are skipped."""
    text = block.decode("utf-8", "surrogateescape")
    headers: list[tuple[str, str]] = []
    for line in re.split(r"\r?\n(?![ \t])", text):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not _FIELD_NAME.fullmatch(name.rstrip(" \t")):
            continue
        headers.append((name.strip(), _FOLD.sub(" ", value).strip()))
    return tuple(headers)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; unknown charsets and bad bytes are replaced."""
    if "=?" not in value:
        return _clean_surrogates(value)
    try:
        chunks = decode_header(value)
    except (ValueError, LookupError, AssertionError):  # email.header raises these on garbage
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
    except LookupError:
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

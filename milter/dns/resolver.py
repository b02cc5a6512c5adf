"""The one small DNS interface every check uses (implementation: see ``milter.dns`` modules).

Record text formats in ``DnsAnswer.records``:
- A / AAAA: the address text ("192.0.2.1", "2001:db8::1")
- MX: "<preference> <exchange>" with the exchange lower-cased, without the final dot
- PTR / CNAME / NS: the target name, lower-cased, without the final dot
- TXT: the character-strings of one record concatenated, decoded as UTF-8 (invalid bytes
  replaced), one element per record
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class DnsError(Exception):
    """Root of DNS failures; checks turn these into ``temperror`` results."""


class DnsTimeout(DnsError):
    """No answer within the per-query timeout or the per-message budget."""


class DnsServFail(DnsError):
    """The server answered SERVFAIL, REFUSED or another error rcode."""


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """Answer to one query. ``nxdomain`` is True when the name does not exist;
    an empty ``records`` with ``nxdomain`` False is NODATA."""

    name: str
    rdtype: str
    records: tuple[str, ...]
    nxdomain: bool = False


class Resolver(Protocol):
    """Asynchronous DNS lookups. Raises only ``DnsError`` subclasses."""

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look up ``rdtype`` ("A", "AAAA", "MX", "TXT", "PTR") records of ``name``."""
        ...


@runtime_checkable
class CachingResolver(Resolver, Protocol):
    """A ``Resolver`` that can also answer from its cache alone, without I/O."""

    def cached(self, name: str, rdtype: str) -> DnsAnswer | None:
        """The fresh cached answer for ``name``/``rdtype``, or None."""
        ...

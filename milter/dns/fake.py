"""``FakeResolver``: an in-memory ``Resolver`` test double for unit tests (no sockets).

Tests that need real DNS behaviour (timeouts, truncation, TTLs) use the test server in
``tests/support/dnsserver.py`` with ``DnsResolver`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from milter.dns.resolver import DnsAnswer, DnsError

__all__ = ["Entry", "FakeResolver"]

Entry = Iterable[str] | DnsError


class FakeResolver:
    """Answers from ``data``: {(name, rdtype): records-in-resolver-text-form | DnsError}.

    Names are case-insensitive and may end with a dot. An exception value is raised for
    that query. A missing key is NODATA when the name has other types, else NXDOMAIN.
    Every query is appended to ``queries`` as (name, rdtype).
    """

    def __init__(self, data: Mapping[tuple[str, str], Entry] | None = None) -> None:
        self._data: dict[tuple[str, str], tuple[str, ...] | DnsError] = {}
        self.queries: list[tuple[str, str]] = []
        for (name, rdtype), value in (data or {}).items():
            self.add(name, rdtype, value)

    def add(self, name: str, rdtype: str, value: Entry) -> None:
        """Set the answer (or the error) for one (name, rdtype)."""
        stored: tuple[str, ...] | DnsError
        if isinstance(value, DnsError):
            stored = value
        elif isinstance(value, str):
            stored = (value,)
        else:
            stored = tuple(value)
        self._data[(_norm(name), rdtype.upper())] = stored

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look up the canned answer."""
        key = (_norm(name), rdtype.upper())
        self.queries.append(key)
        value = self._data.get(key)
        if isinstance(value, DnsError):
            raise value
        if value is None:
            exists = any(n == key[0] for n, _ in self._data)
            return DnsAnswer(key[0], key[1], (), nxdomain=not exists)
        return DnsAnswer(key[0], key[1], value)


def _norm(name: str) -> str:
    return name.rstrip(".").lower()

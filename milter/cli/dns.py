"""Build the DNS resolver for ``tocsin scan --dns``."""

from __future__ import annotations

from milter.dns.resolver import Resolver


def make_resolver(nameservers: list[str]) -> Resolver:
    """A caching resolver on the given nameservers (the system's when empty)."""
    from milter.dns.stub import DnsResolver

    return DnsResolver(nameservers=nameservers or None)

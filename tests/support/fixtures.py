"""Pytest fixtures: a real local DNS server and a resolver pointed at it.

Enable everywhere with ``pytest_plugins = ["tests.support.fixtures"]`` in tests/conftest.py,
or import the fixtures by name into a test module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from milter.dns.stub import DnsResolver
from tests.support.dnsserver import DnsTestServer

#: Per-query timeout of ``dns_resolver``: short, since the test server answers at once.
TEST_DNS_TIMEOUT = 2.0  # generous: a loaded CI machine must not turn a slow answer into a timeout


@pytest.fixture
def dns_server() -> Iterator[DnsTestServer]:
    """A started, empty ``DnsTestServer`` on 127.0.0.1 (fill it with ``load``/``add``)."""
    with DnsTestServer() as server:
        yield server


@pytest.fixture
def dns_resolver(dns_server: DnsTestServer) -> DnsResolver:
    """A fresh ``DnsResolver`` (own cache) asking only ``dns_server``."""
    return DnsResolver([dns_server.address], timeout=TEST_DNS_TIMEOUT)

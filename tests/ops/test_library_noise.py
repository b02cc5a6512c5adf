"""A missing DKIM/ARC key in DNS is a result, not an error: nothing reaches ERROR in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from milter.auth.arc import check_arc
from milter.auth.dkim import verify_dkim
from milter.dns.stub import DnsResolver
from milter.model.auth import AuthStatus


@pytest.fixture
def sealed(corpus: Path) -> bytes:
    """A real honeypot message with ARC and DKIM headers (their keys are not in our DNS)."""
    return (corpus / "phish-fr" / "sample-5305.eml").read_bytes()


async def test_missing_arc_and_dkim_keys_stay_out_of_error(
    sealed: bytes, dns_resolver: DnsResolver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    arc = await check_arc(sealed, dns_resolver)
    dkim_results = await verify_dkim(sealed, dns_resolver)
    assert arc.status is AuthStatus.FAIL
    assert all(r.result is not AuthStatus.PASS for r in dkim_results)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [f"{r.name}: {r.getMessage()}" for r in loud]
    # the library's message is kept for debugging, under Tocsin's logger name
    quiet = [r for r in caplog.records if r.name == "tocsin.dkimpy"]
    assert any("missing public key" in r.getMessage() for r in quiet)

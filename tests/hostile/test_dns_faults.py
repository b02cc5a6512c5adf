"""#17 faults: DNS down, SERVFAIL, REFUSED and silent, each against a real DNS server on
loopback (tests/support/dnsserver.py). Every scan ends with the policy's temperror
decision (a brand claim that cannot be verified is tempfailed), and the number of
queries stays within the per-message DNS budget; no test measures time."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from milter.checks.auth import MAX_QUERIES
from milter.dns.stub import DnsResolver
from milter.engine import scan
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition
from milter.policy.loader import load_policy
from tests.support.dnsserver import DnsTestServer

BRAND_MAIL = (
    b"From: Assurance Maladie <noreply@ameli.fr>\r\nTo: assure@example.net\r\n"
    b"Subject: Votre attestation\r\nMessage-ID: <1@ameli.fr>\r\n\r\n"
    b"Bonjour, votre attestation est disponible dans votre espace ameli.\r\n"
)
ENVELOPE = Envelope(client_ip="192.0.2.10", helo="mx.ameli.fr", mail_from="noreply@ameli.fr")
NAMES = ("ameli.fr", "_dmarc.ameli.fr", "fr", "_dmarc.fr", "mx.ameli.fr")


@pytest.fixture
def short_budget(tmp_path: Path) -> Path:
    (tmp_path / "local.yaml").write_text("limits:\n  dns_budget_seconds: 2\n")
    return tmp_path


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("fault", ["servfail", "refused", "timeout"])
async def test_dns_faults_give_the_temperror_decision(short_budget: Path, fault: str) -> None:
    policy = load_policy(short_budget)
    with DnsTestServer() as server:
        for name in NAMES:
            server.fault(name, fault)
        resolver = DnsResolver([server.address], timeout=0.3)
        result = await scan(BRAND_MAIL, ENVELOPE, policy, resolver)
        queries = len(server.queries)
    codes = {f.code for f in result.verdict.findings}
    assert "AUTH_TEMPERROR" in codes
    assert result.verdict.disposition is Disposition.TEMPFAIL
    assert result.plan.smtp_reply is not None
    assert result.plan.smtp_reply.code // 100 == 4
    assert 0 < queries <= MAX_QUERIES * 4  # bounded work (UDP retries and TCP included)


async def test_dns_down_gives_the_temperror_decision(short_budget: Path) -> None:
    policy = load_policy(short_budget)
    resolver = DnsResolver([f"127.0.0.1:{_free_udp_port()}"], timeout=0.3)
    result = await scan(BRAND_MAIL, ENVELOPE, policy, resolver)
    assert "AUTH_TEMPERROR" in {f.code for f in result.verdict.findings}
    assert result.verdict.disposition is Disposition.TEMPFAIL

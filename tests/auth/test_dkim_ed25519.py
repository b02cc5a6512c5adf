"""ed25519-sha256 DKIM (RFC 8463): keys made here with PyNaCl, signed by dkimpy, verified
over the real DNS test server on 127.0.0.1."""

from __future__ import annotations

import base64
import shutil
from functools import cache

import dkim
import nacl.signing
import pytest

from milter.auth.dkim import verify_dkim
from milter.dns.stub import DnsResolver
from milter.model.auth import AuthStatus
from tests.auth.test_dkim import MESSAGE, make_key, sign
from tests.support.dnsserver import DnsTestServer
from tests.support.fixtures import TEST_DNS_TIMEOUT

SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


@cache
def ed25519_key(seed: int) -> tuple[bytes, str]:
    """(private key for dkimpy: base64 of the 32-byte seed, public key base64 for p=)."""
    key = nacl.signing.SigningKey(bytes([seed]) * 32)
    return base64.b64encode(bytes(key)), base64.b64encode(bytes(key.verify_key)).decode()


def ed25519_record(seed: int) -> str:
    return f"v=DKIM1; k=ed25519; p={ed25519_key(seed)[1]}"


def sign_ed25519(message: bytes, domain: str, selector: str, seed: int = 1) -> bytes:
    header = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        ed25519_key(seed)[0],
        signature_algorithm=b"ed25519-sha256",
        include_headers=SIGNED_HEADERS,
    )
    return bytes(header) + message


async def _verify(raw: bytes, zone: dict[str, list[tuple[str, str]]]) -> list[AuthStatus]:
    with DnsTestServer(zone) as server:
        resolver = DnsResolver([server.address], timeout=TEST_DNS_TIMEOUT)
        return [r.result for r in await verify_dkim(raw, resolver)]


async def test_ed25519_signature_passes_over_dns() -> None:
    raw = sign_ed25519(MESSAGE, "ameli.fr", "ed")
    with DnsTestServer({"ed._domainkey.ameli.fr": [("TXT", ed25519_record(1))]}) as server:
        (result,) = await verify_dkim(raw, DnsResolver([server.address], timeout=TEST_DNS_TIMEOUT))
    assert result.result is AuthStatus.PASS, result.reason
    assert result.props["header.a"] == "ed25519-sha256"
    assert result.props["header.d"] == "ameli.fr"
    assert "256-bit ed25519 key" in result.reason


@pytest.mark.parametrize(
    ("old", "new"),
    [(b"disponible", b"disponibIe"), (b"Votre remboursement\r", b"Votre rembourse-\r")],
)
async def test_one_changed_byte_fails(old: bytes, new: bytes) -> None:
    raw = sign_ed25519(MESSAGE, "ameli.fr", "ed")
    assert raw.count(old) == 1
    changed = raw.replace(old, new)
    statuses = await _verify(changed, {"ed._domainkey.ameli.fr": [("TXT", ed25519_record(1))]})
    assert statuses == [AuthStatus.FAIL]


async def test_key_of_another_pair_fails() -> None:
    raw = sign_ed25519(MESSAGE, "ameli.fr", "ed", seed=1)
    statuses = await _verify(raw, {"ed._domainkey.ameli.fr": [("TXT", ed25519_record(2))]})
    assert statuses == [AuthStatus.FAIL]


async def test_truncated_ed25519_key_is_permerror() -> None:
    raw = sign_ed25519(MESSAGE, "ameli.fr", "ed")
    short = base64.b64encode(base64.b64decode(ed25519_key(1)[1])[:16]).decode()
    zone = {"ed._domainkey.ameli.fr": [("TXT", f"v=DKIM1; k=ed25519; p={short}")]}
    assert await _verify(raw, zone) == [AuthStatus.PERMERROR]


async def test_ed25519_key_for_an_rsa_signature_is_permerror() -> None:
    raw = sign_ed25519(MESSAGE, "ameli.fr", "ed")
    rsa_tagged = ed25519_record(1).replace("k=ed25519", "k=rsa")
    statuses = await _verify(raw, {"ed._domainkey.ameli.fr": [("TXT", rsa_tagged)]})
    assert statuses == [AuthStatus.PERMERROR]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not found (RSA keys)")
async def test_dual_signed_rsa_and_ed25519_both_reported() -> None:
    """RFC 8463 §4 suggests signing with both algorithms; each result stands on its own."""
    rsa = make_key(1024)
    raw = sign(sign_ed25519(MESSAGE, "ameli.fr", "ed"), "ameli.fr", "rsa", rsa)
    zone = {
        "ed._domainkey.ameli.fr": [("TXT", ed25519_record(1))],
        "rsa._domainkey.ameli.fr": [("TXT", rsa.record())],
    }
    with DnsTestServer(zone) as server:
        results = await verify_dkim(raw, DnsResolver([server.address], timeout=TEST_DNS_TIMEOUT))
    by_alg = {r.props["header.a"]: r.result for r in results}
    assert by_alg == {"rsa-sha256": AuthStatus.PASS, "ed25519-sha256": AuthStatus.PASS}

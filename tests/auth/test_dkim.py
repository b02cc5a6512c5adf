"""DKIM verification: messages signed here with dkimpy and keys made by the openssl CLI."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

import dkim
import pytest
from hypothesis import given
from hypothesis import strategies as st

from milter.auth.dkim import (
    DkimSignature,
    KeyRecord,
    _no_whitespace,
    evaluate_signature,
    verify_dkim,
)
from milter.dns.fake import FakeResolver
from milter.dns.resolver import DnsServFail, DnsTimeout
from milter.dns.stub import DnsResolver
from milter.model.auth import AuthStatus
from tests.support.dnsserver import DnsTestServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not found")

MESSAGE = (
    b"From: Assurance Maladie <ne-pas-repondre@ameli.fr>\r\n"
    b"To: assure@example.org\r\n"
    b"Subject: Votre remboursement\r\n"
    b"Date: Mon, 02 Jun 2025 10:00:00 +0200\r\n"
    b"Message-ID: <1@ameli.fr>\r\n"
    b"\r\n"
    b"Bonjour,\r\nVotre remboursement est disponible.\r\n"
)


@dataclass(frozen=True)
class Key:
    private_pem: bytes
    public_b64: str

    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"


@cache
def make_key(bits: int) -> Key:
    """An RSA key pair from the openssl CLI (PKCS#1 PEM, which dkimpy reads)."""
    pem = subprocess.run(
        ["openssl", "genrsa", "-traditional", str(bits)], check=True, capture_output=True
    ).stdout
    der = subprocess.run(
        ["openssl", "rsa", "-pubout", "-outform", "DER"],
        input=pem,
        check=True,
        capture_output=True,
    ).stdout
    return Key(pem, base64.b64encode(der).decode())


def sign(message: bytes, domain: str, selector: str, key: Key) -> bytes:
    header = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        key.private_pem,
        include_headers=[b"from", b"to", b"subject"],
    )
    return bytes(header) + message


async def test_signed_message_passes() -> None:
    key = make_key(1024)
    signed = sign(MESSAGE, "ameli.fr", "sel1", key)
    resolver = FakeResolver({("sel1._domainkey.ameli.fr", "TXT"): key.record()})
    (result,) = await verify_dkim(signed, resolver)
    assert result.result is AuthStatus.PASS
    assert result.method == "dkim"
    assert result.props["header.d"] == "ameli.fr"
    assert result.props["header.s"] == "sel1"
    assert result.props["header.a"] == "rsa-sha256"
    assert len(result.props["header.b"]) == 8
    assert "1024-bit rsa key" in result.reason


async def test_one_changed_body_byte_fails() -> None:
    key = make_key(1024)
    signed = sign(MESSAGE, "ameli.fr", "sel1", key).replace(b"disponible", b"disponibLe")
    resolver = FakeResolver({("sel1._domainkey.ameli.fr", "TXT"): key.record()})
    (result,) = await verify_dkim(signed, resolver)
    assert result.result is AuthStatus.FAIL
    assert "body hash mismatch" in result.reason


async def test_changed_signed_header_fails() -> None:
    key = make_key(1024)
    signed = sign(MESSAGE, "ameli.fr", "sel1", key).replace(b"Subject: Votre", b"Subject: Notre")
    resolver = FakeResolver({("sel1._domainkey.ameli.fr", "TXT"): key.record()})
    (result,) = await verify_dkim(signed, resolver)
    assert result.result is AuthStatus.FAIL
    assert "did not verify" in result.reason


async def test_weak_512_bit_key_is_policy() -> None:
    key = make_key(512)
    signed = sign(MESSAGE, "ameli.fr", "weak", key)
    resolver = FakeResolver({("weak._domainkey.ameli.fr", "TXT"): key.record()})
    (result,) = await verify_dkim(signed, resolver)
    assert result.result is AuthStatus.POLICY
    assert "weak key" in result.reason
    assert "512-bit" in result.reason


async def test_missing_key_is_permerror() -> None:
    signed = sign(MESSAGE, "ameli.fr", "gone", make_key(1024))
    (result,) = await verify_dkim(signed, FakeResolver())
    assert result.result is AuthStatus.PERMERROR
    assert "no key" in result.reason


async def test_revoked_key_is_permerror() -> None:
    signed = sign(MESSAGE, "ameli.fr", "old", make_key(1024))
    resolver = FakeResolver({("old._domainkey.ameli.fr", "TXT"): "v=DKIM1; k=rsa; p="})
    (result,) = await verify_dkim(signed, resolver)
    assert result.result is AuthStatus.PERMERROR
    assert "revoked" in result.reason


@pytest.mark.parametrize("error", [DnsTimeout("timeout"), DnsServFail("SERVFAIL")])
async def test_dns_failure_is_temperror(error: Exception) -> None:
    signed = sign(MESSAGE, "ameli.fr", "sel1", make_key(1024))
    resolver = FakeResolver({("sel1._domainkey.ameli.fr", "TXT"): error})  # type: ignore[dict-item]
    (result,) = await verify_dkim(signed, resolver)
    assert result.result is AuthStatus.TEMPERROR


async def test_multiple_signatures_reported_separately() -> None:
    good, other = make_key(1024), make_key(2048)
    once = sign(MESSAGE, "ameli.fr", "sel1", good)
    twice = sign(once, "relay.example", "r1", other)
    resolver = FakeResolver(
        {
            ("sel1._domainkey.ameli.fr", "TXT"): good.record(),
            ("r1._domainkey.relay.example", "TXT"): DnsTimeout("slow"),
        }
    )
    results = await verify_dkim(twice, resolver)
    assert [(r.props["header.d"], r.result) for r in results] == [
        ("relay.example", AuthStatus.TEMPERROR),
        ("ameli.fr", AuthStatus.PASS),
    ]


async def test_signature_limit_reports_the_rest_not_evaluated() -> None:
    key = make_key(1024)
    message = MESSAGE
    for i in range(4):
        message = sign(message, "ameli.fr", f"s{i}", key)
    resolver = FakeResolver({(f"s{i}._domainkey.ameli.fr", "TXT"): key.record() for i in range(4)})
    results = await verify_dkim(message, resolver, max_signatures=2)
    assert [r.result for r in results] == [
        AuthStatus.PASS,
        AuthStatus.PASS,
        AuthStatus.NEUTRAL,
        AuthStatus.NEUTRAL,
    ]
    assert "not evaluated" in results[3].reason
    assert len(resolver.queries) == 2


async def test_unsigned_message_is_none() -> None:
    (result,) = await verify_dkim(MESSAGE, FakeResolver())
    assert result.result is AuthStatus.NONE


async def test_malformed_signature_is_permerror_without_dns() -> None:
    message = b"DKIM-Signature: v=1; a=rsa-sha256; d=ameli.fr\r\n" + MESSAGE
    resolver = FakeResolver()
    (result,) = await verify_dkim(message, resolver)
    assert result.result is AuthStatus.PERMERROR
    assert resolver.queries == []


async def test_key_type_mismatch_is_permerror() -> None:
    signed = sign(MESSAGE, "ameli.fr", "sel1", make_key(1024))
    record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    resolver = FakeResolver({("sel1._domainkey.ameli.fr", "TXT"): record})
    (result,) = await verify_dkim(signed, resolver)
    assert result.result is AuthStatus.PERMERROR
    assert "does not match" in result.reason


def test_evaluate_is_pure_given_a_record() -> None:
    key = make_key(1024)
    signed = sign(MESSAGE, "ameli.fr", "sel1", key)
    verifier = dkim.DKIM(signed, minkey=0)
    sig = DkimSignature(0, "ameli.fr", "sel1", "rsa-sha256", "abcdefgh")
    assert (
        evaluate_signature(verifier, sig, KeyRecord(key.record()), 1024).result is AuthStatus.PASS
    )
    wrong = KeyRecord(make_key(2048).record())
    assert evaluate_signature(verifier, sig, wrong, 1024).result is AuthStatus.FAIL


# -- over a real DNS server on 127.0.0.1 (tests/support/dnsserver.py) ---------------------


async def test_real_dns_two_signatures_long_key_record() -> None:
    small, big = make_key(1024), make_key(2048)  # the 2048-bit record spans 2 strings
    message = sign(sign(MESSAGE, "ameli.fr", "sel1", small), "assurance-maladie.fr", "k2", big)
    zone = {
        "sel1._domainkey.ameli.fr": [("TXT", small.record())],
        "k2._domainkey.assurance-maladie.fr": [("TXT", big.record())],
    }
    with DnsTestServer(zone) as server:
        results = await verify_dkim(message, DnsResolver([server.address], timeout=0.5))
    assert [(r.props["header.d"], r.result) for r in results] == [
        ("assurance-maladie.fr", AuthStatus.PASS),
        ("ameli.fr", AuthStatus.PASS),
    ]
    assert "2048-bit" in results[0].reason


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("timeout", AuthStatus.TEMPERROR),
        ("servfail", AuthStatus.TEMPERROR),
        (None, AuthStatus.PERMERROR),  # NXDOMAIN: no key for signature
    ],
)
async def test_real_dns_failures(fault: str | None, expected: AuthStatus) -> None:
    message = sign(MESSAGE, "ameli.fr", "sel1", make_key(1024))
    with DnsTestServer({"ameli.fr": [("A", "192.0.2.1")]}) as server:
        if fault:
            server.fault("sel1._domainkey.ameli.fr", fault)
        (result,) = await verify_dkim(message, DnsResolver([server.address], timeout=0.5))
    assert result.result is expected, result.reason


async def test_content_appended_after_l_is_policy() -> None:
    key = make_key(1024)
    header = dkim.sign(
        MESSAGE, b"sel1", b"ameli.fr", key.private_pem, include_headers=[b"from"], length=True
    )
    resolver = FakeResolver({("sel1._domainkey.ameli.fr", "TXT"): key.record()})
    (intact,) = await verify_dkim(bytes(header) + MESSAGE, resolver)
    assert intact.result is AuthStatus.PASS
    tampered = bytes(header) + MESSAGE + b"Cliquez ici: http://phish.example/\r\n"
    (result,) = await verify_dkim(tampered, resolver)
    assert result.result is AuthStatus.POLICY
    assert "added after the signed l=" in result.reason


# every character str.isspace or re's \s may treat as whitespace, and a few that are not
_SPACES = [chr(c) for c in range(0x3100) if chr(c).isspace() or re.match(r"\s", chr(c))]


@given(st.text(alphabet=st.sampled_from([*_SPACES, "a", "Z", "+", "/", "=", "\u200b"])))
def test_b_prefix_whitespace_is_res(text: str) -> None:
    """The b= prefix reported (header.b) drops what ``re``'s \\s drops, nothing else."""
    assert _no_whitespace(text) == re.sub(r"\s+", "", text)

"""Trusted upstream Authentication-Results through the whole engine, over the real DNS test
server on 127.0.0.1: a gateway behind an internal relay takes SPF from the border MX it
trusts, and nothing else unless its own check ended in temperror."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from milter.actions.apply import apply_plan
from milter.engine import scan
from milter.model.auth import AuthStatus
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition
from milter.policy.loader import load_policy
from milter.policy.model import Policy
from tests.auth.test_dkim import MESSAGE
from tests.auth.test_dkim_ed25519 import ed25519_record, sign_ed25519
from tests.support.dnsserver import DnsTestServer

BORDER = "mx1.example.fr"
SENDER = "ne-pas-repondre@ameli.fr"
INTERNAL = Envelope(
    client_ip="10.0.0.25", helo="relay.internal", mail_from=SENDER, rcpts=("a@example.org",)
)
INTERNET = Envelope(
    client_ip="203.0.113.9", helo="mail.example.net", mail_from=SENDER, rcpts=("a@example.org",)
)
UPSTREAM_SPF_PASS = (
    f"Authentication-Results: {BORDER};\r\n"
    f'\tspf=pass reason="matched ip4:198.51.100.0/24" smtp.mailfrom={SENDER}\r\n'
)


@pytest.fixture
def trusting(tmp_path: Path) -> Policy:
    (tmp_path / "auth.yaml").write_text(
        f"authentication:\n  authserv_id: gw.example.fr\n  trusted_authserv_ids: [{BORDER}]\n"
    )
    return load_policy(tmp_path)


@pytest.fixture
def ameli(dns_server: DnsTestServer) -> DnsTestServer:
    dns_server.add("ameli.fr", "TXT", "v=spf1 ip4:198.51.100.0/24 -all")
    dns_server.add("_dmarc.ameli.fr", "TXT", "v=DMARC1; p=reject")
    dns_server.add("ed._domainkey.ameli.fr", "TXT", ed25519_record(1))
    dns_server.add("relay.internal", "TXT", "v=spf1 -all")
    return dns_server


def by_method(result, method: str):  # type: ignore[no-untyped-def]
    return [a for a in result.verdict.auth if a.method == method]


def codes(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.code for f in result.verdict.findings}


async def test_internal_hop_takes_spf_from_the_trusted_border(
    ameli, dns_resolver, trusting
) -> None:
    raw = UPSTREAM_SPF_PASS.encode() + MESSAGE  # unsigned: only SPF can align
    result = await scan(raw, INTERNAL, trusting, dns_resolver)
    spf = by_method(result, "spf")[0]  # MAIL FROM identity first
    assert spf.result is AuthStatus.PASS
    assert spf.reason == f"from upstream {BORDER}: matched ip4:198.51.100.0/24"
    (dmarc,) = by_method(result, "dmarc")
    assert dmarc.result is AuthStatus.PASS, dmarc.reason
    assert "BRAND_AUTH_FAIL" not in codes(result)
    assert "AUTH_UPSTREAM" in codes(result)
    assert result.verdict.disposition is Disposition.ACCEPT
    # our own SPF check against the relay's address was not even asked for
    assert not [q for q in ameli.queries if q.name in ("ameli.fr", "relay.internal")]
    delivered = apply_plan(raw, result.plan)
    ours = delivered.split(b"Authentication-Results: gw.example.fr;", 1)[1]
    assert f'spf=pass reason="from upstream {BORDER}'.encode() in ours
    assert UPSTREAM_SPF_PASS.encode() in delivered  # the upstream header stays


async def test_an_internet_client_gets_our_own_spf(ameli, dns_resolver, trusting) -> None:
    """A sender connecting directly could write any header: upstream SPF is not used."""
    raw = UPSTREAM_SPF_PASS.encode() + MESSAGE
    result = await scan(raw, INTERNET, trusting, dns_resolver)
    spf = by_method(result, "spf")[0]  # MAIL FROM identity first
    assert spf.result is AuthStatus.FAIL
    assert "upstream" not in spf.reason
    assert "AUTH_UPSTREAM" not in codes(result)
    assert "BRAND_AUTH_FAIL" in codes(result)
    assert result.verdict.disposition is Disposition.QUARANTINE


async def test_trusted_header_below_an_untrusted_hop_is_ignored(
    ameli, dns_resolver, trusting
) -> None:
    untrusted = (
        b"Authentication-Results: relay.partner.example; spf=pass smtp.mailfrom=x@x.example\r\n"
    )
    raw = untrusted + UPSTREAM_SPF_PASS.encode() + MESSAGE
    result = await scan(raw, INTERNAL, trusting, dns_resolver)
    spf = by_method(result, "spf")[0]  # MAIL FROM identity first
    assert "upstream" not in spf.reason  # our own check, against 10.0.0.25
    assert spf.result is AuthStatus.FAIL
    assert "BRAND_AUTH_FAIL" in codes(result)


async def test_forged_lower_copy_of_the_trusted_id_does_not_win(
    ameli, dns_resolver, trusting
) -> None:
    real = f"Authentication-Results: {BORDER}; spf=fail smtp.mailfrom={SENDER}\r\n"
    raw = real.encode() + b"Received: from attacker by mx1.example.fr\r\n"
    raw += UPSTREAM_SPF_PASS.encode() + MESSAGE
    result = await scan(raw, INTERNAL, trusting, dns_resolver)
    spf = by_method(result, "spf")[0]  # MAIL FROM identity first
    assert spf.result is AuthStatus.FAIL
    assert spf.reason == f"from upstream {BORDER}"
    assert "BRAND_AUTH_FAIL" in codes(result)


async def test_upstream_spf_for_another_sender_is_ignored(ameli, dns_resolver, trusting) -> None:
    other = f"Authentication-Results: {BORDER}; spf=pass smtp.mailfrom=a@partner.example\r\n"
    result = await scan(other.encode() + MESSAGE, INTERNAL, trusting, dns_resolver)
    spf = by_method(result, "spf")[0]  # MAIL FROM identity first
    assert "upstream" not in spf.reason
    assert "BRAND_AUTH_FAIL" in codes(result)


async def test_untrusted_id_is_never_used(ameli, dns_resolver, policy) -> None:
    """The shipped policy trusts no upstream id at all."""
    result = await scan(UPSTREAM_SPF_PASS.encode() + MESSAGE, INTERNAL, policy, dns_resolver)
    assert "upstream" not in by_method(result, "spf")[0].reason
    assert "BRAND_AUTH_FAIL" in codes(result)


async def test_dkim_temperror_is_resolved_by_the_border_result(
    ameli, dns_resolver, trusting
) -> None:
    signed = sign_ed25519(MESSAGE, "ameli.fr", "ed")
    found = re.search(rb"[;\s]b=([^;]+)", signed)
    assert found is not None
    b_prefix = re.sub(rb"\s+", b"", found.group(1))[:8].decode()
    ameli.fault("ed._domainkey.ameli.fr", "timeout")
    header = (
        f"Authentication-Results: {BORDER}; dkim=pass header.d=ameli.fr header.s=ed "
        f'header.b="{b_prefix}"\r\n'
    )
    result = await scan(header.encode() + signed, INTERNET, trusting, dns_resolver)
    (dkim,) = by_method(result, "dkim")
    assert dkim.result is AuthStatus.PASS
    assert dkim.reason == f"from upstream {BORDER}"
    (dmarc,) = by_method(result, "dmarc")
    assert dmarc.result is AuthStatus.PASS  # aligned DKIM, computed by us
    assert "AUTH_TEMPERROR" not in codes(result)
    assert result.verdict.disposition is Disposition.ACCEPT


async def test_dkim_temperror_without_upstream_still_tempfails(
    ameli, dns_resolver, trusting
) -> None:
    ameli.fault("ed._domainkey.ameli.fr", "timeout")
    result = await scan(sign_ed25519(MESSAGE, "ameli.fr", "ed"), INTERNET, trusting, dns_resolver)
    assert "AUTH_TEMPERROR" in codes(result)
    assert result.verdict.disposition is Disposition.TEMPFAIL


async def test_our_dkim_fail_is_not_overridden_by_an_upstream_pass(
    ameli, dns_resolver, trusting
) -> None:
    signed = sign_ed25519(MESSAGE, "ameli.fr", "ed").replace(b"disponible", b"disponibIe")
    header = f"Authentication-Results: {BORDER}; dkim=pass header.d=ameli.fr header.s=ed\r\n"
    result = await scan(header.encode() + signed, INTERNET, trusting, dns_resolver)
    (dkim,) = by_method(result, "dkim")
    assert dkim.result is AuthStatus.FAIL
    assert "BRAND_AUTH_FAIL" in codes(result)


async def test_dmarc_temperror_is_resolved_by_the_border_result(
    ameli, dns_resolver, trusting
) -> None:
    ameli.fault("_dmarc.ameli.fr", "servfail")
    header = (
        f"Authentication-Results: {BORDER}; dmarc=fail header.from=ameli.fr policy.dmarc=reject\r\n"
    )
    result = await scan(header.encode() + MESSAGE, INTERNET, trusting, dns_resolver)
    (dmarc,) = by_method(result, "dmarc")
    assert dmarc.result is AuthStatus.FAIL
    assert dmarc.props["policy.dmarc"] == "reject"
    assert dmarc.reason == f"from upstream {BORDER}"
    assert {"DMARC_FAIL", "BRAND_AUTH_FAIL", "AUTH_UPSTREAM"} <= codes(result)

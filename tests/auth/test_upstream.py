"""Which upstream Authentication-Results are believed, and which results they replace
(pure functions of milter.auth.upstream)."""

from __future__ import annotations

import pytest

from milter.auth.arc import ArcResult
from milter.auth.authres import ParsedAuthres, format_authres, parse_authres
from milter.auth.dmarc import DmarcResult
from milter.auth.dmarc_record import Policy
from milter.auth.upstream import (
    UpstreamResult,
    adopt,
    arc_from_upstream,
    dkim_from_upstream,
    dmarc_from_upstream,
    is_internal_client,
    spf_from_upstream,
    trusted_block,
)
from milter.model.auth import AuthResult, AuthStatus

OURS = "gw.example.fr"
TRUSTED = ("mx1.example.fr", "relay.example.fr")
SPF_PASS = "mx1.example.fr; spf=pass smtp.mailfrom=ne-pas-repondre@ameli.fr"


def ids(values: list[str]) -> list[str]:
    return [h.authserv_id for h in trusted_block(values, OURS, TRUSTED)]


def test_topmost_trusted_headers_are_believed() -> None:
    assert ids([SPF_PASS, "relay.example.fr; dkim=none"]) == ["mx1.example.fr", "relay.example.fr"]


def test_ids_compare_case_insensitively_and_ignore_a_final_dot() -> None:
    assert ids(["MX1.Example.FR.; spf=pass smtp.mailfrom=a@ameli.fr"]) == ["MX1.Example.FR."]


@pytest.mark.parametrize(
    "boundary",
    [
        "other.example; spf=fail",  # an untrusted ADMD wrote after the trusted one
        "gw.example.fr; spf=pass",  # our own id: a forgery
        "GW.EXAMPLE.FR; spf=pass",
        ";;; not parsable at all",
        "",
    ],
)
def test_anything_below_an_untrusted_or_forged_header_is_not_believed(boundary: str) -> None:
    values = ["relay.example.fr; dkim=none", boundary, SPF_PASS]
    assert ids(values) == ["relay.example.fr"]


def test_a_lower_copy_of_a_taken_id_ends_the_block() -> None:
    """The real header is topmost; a forged copy lower down (and all below) is ignored."""
    real = "mx1.example.fr; spf=fail smtp.mailfrom=x@ameli.fr"
    forged = SPF_PASS
    values = [real, forged, "relay.example.fr; spf=pass smtp.mailfrom=x@ameli.fr"]
    (only,) = trusted_block(values, OURS, TRUSTED)
    assert only.results[0].result is AuthStatus.FAIL


def test_our_id_is_never_trusted_even_when_listed() -> None:
    assert trusted_block(["gw.example.fr; spf=pass"], OURS, [OURS, *TRUSTED]) == ()


def test_nothing_is_trusted_without_trusted_ids() -> None:
    assert trusted_block([SPF_PASS], OURS, ()) == ()


@pytest.mark.parametrize(
    ("ip", "internal"),
    [
        ("10.1.2.3", True),
        ("172.31.0.1", True),
        ("192.168.1.1", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("fd00::25", True),
        ("IPv6:fe80::1", True),
        ("::ffff:10.0.0.5", True),
        ("198.51.100.7", False),
        ("192.0.2.10", False),  # documentation range: treated as an Internet address
        ("172.32.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT is shared, not ours
        ("2001:db8::1", False),
        ("not an ip", False),
        (None, False),
    ],
)
def test_internal_client(ip: str | None, internal: bool) -> None:
    assert is_internal_client(ip) is internal


def block(*values: str) -> tuple[ParsedAuthres, ...]:
    return trusted_block(list(values), OURS, TRUSTED)


@pytest.mark.parametrize(
    ("client_ip", "mail_from", "taken"),
    [
        ("10.0.0.2", "bounce@ameli.fr", True),  # internal hop, same MAIL FROM domain
        ("10.0.0.2", "bounce@AMELI.fr", True),
        (None, None, True),  # nothing known about the transaction
        (None, "bounce@ameli.fr", True),
        ("198.51.100.7", "bounce@ameli.fr", False),  # Internet client: our own check stands
        ("10.0.0.2", "bounce@phish.example", False),  # another message's result
        ("10.0.0.2", "", False),  # null sender, but upstream checked a mailbox
    ],
)
def test_spf_from_upstream_conditions(
    client_ip: str | None, mail_from: str | None, taken: bool
) -> None:
    result = spf_from_upstream(block(SPF_PASS), client_ip, mail_from)
    assert bool(result) is taken


def test_spf_null_sender_takes_postmaster_or_helo_result() -> None:
    header = "mx1.example.fr; spf=pass smtp.mailfrom=postmaster@out.ameli.fr"
    (result,) = spf_from_upstream(block(header), "10.0.0.2", "")
    assert result.result.props["smtp.mailfrom"] == "postmaster@out.ameli.fr"


def test_spf_mailfrom_first_then_helo_of_the_same_header() -> None:
    header = (
        "mx1.example.fr; spf=none smtp.helo=out.example; spf=pass smtp.mailfrom=bounce@ameli.fr"
    )
    mailfrom, helo = spf_from_upstream(block(header), "10.0.0.2", "bounce@ameli.fr")
    assert "smtp.mailfrom" in mailfrom.result.props
    assert helo.result.props == {"smtp.helo": "out.example"}


def test_spf_from_the_topmost_trusted_header() -> None:
    relay = "relay.example.fr; spf=softfail smtp.mailfrom=bounce@ameli.fr"
    (result,) = spf_from_upstream(block(relay, SPF_PASS), "10.0.0.2", "bounce@ameli.fr")
    assert result.authserv_id == "relay.example.fr"
    assert result.result.result is AuthStatus.SOFTFAIL


def test_adopted_result_names_its_source_and_drops_bad_property_names() -> None:
    parsed = parse_authres('mx1.example.fr; spf=pass reason="ok" smtp.mailfrom=a@ameli.fr x.y"z=1')
    assert parsed is not None
    adopted = adopt(UpstreamResult("mx1.example.fr", parsed.results[0]))
    assert adopted.reason == "from upstream mx1.example.fr: ok"
    assert dict(adopted.props) == {"smtp.mailfrom": "a@ameli.fr"}
    assert 'reason="from upstream mx1.example.fr: ok"' in format_authres(OURS, [adopted])


DKIM_TEMP = AuthResult(
    "dkim",
    AuthStatus.TEMPERROR,
    "DNS timeout",
    {"header.d": "ameli.fr", "header.s": "sel", "header.b": "aB+/9xyz"},
)


@pytest.mark.parametrize(
    ("upstream", "adopted"),
    [
        ("dkim=pass header.d=ameli.fr header.s=sel header.b=aB+/9xyzLONGER", True),
        ("dkim=pass header.d=AMELI.FR header.s=sel", True),  # no header.b: d and s suffice
        ("dkim=pass header.d=ameli.fr header.s=sel header.b=zzzzzzzz", False),  # other signature
        ("dkim=pass header.d=ameli.fr header.s=other", False),
        ("dkim=pass header.d=phish.example header.s=sel", False),
        ("dkim=temperror header.d=ameli.fr header.s=sel", False),
    ],
)
def test_dkim_temperror_replaced_by_the_same_signature(upstream: str, adopted: bool) -> None:
    results, taken = dkim_from_upstream([DKIM_TEMP], block(f"mx1.example.fr; {upstream}"))
    assert (results[0].result is not AuthStatus.TEMPERROR) is adopted
    assert bool(taken) is adopted


def test_dkim_own_verdicts_other_than_temperror_stand() -> None:
    own = AuthResult("dkim", AuthStatus.FAIL, "body hash mismatch", DKIM_TEMP.props)
    upstream = block("mx1.example.fr; dkim=pass header.d=ameli.fr header.s=sel")
    assert dkim_from_upstream([own], upstream) == ((own,), ())


def test_dmarc_temperror_replaced_for_the_same_from_domain() -> None:
    own = DmarcResult(AuthStatus.TEMPERROR, "ameli.fr", "DNS timeout")
    header = "mx1.example.fr; dmarc=fail header.from=ameli.fr policy.dmarc=reject"
    result, taken = dmarc_from_upstream(own, block(header))
    assert taken is not None
    assert result.status is AuthStatus.FAIL
    assert result.applied_policy is Policy.REJECT
    assert result.reason.startswith("from upstream mx1.example.fr")
    other = block("mx1.example.fr; dmarc=pass header.from=phish.example")
    assert dmarc_from_upstream(own, other) == (own, None)
    own_fail = DmarcResult(AuthStatus.FAIL, "ameli.fr", "not aligned")
    upstream_pass = block("mx1.example.fr; dmarc=pass header.from=ameli.fr")
    assert dmarc_from_upstream(own_fail, upstream_pass) == (own_fail, None)


def test_arc_temperror_replaced_without_naming_a_sealer() -> None:
    own = ArcResult(AuthStatus.TEMPERROR, 2, ("a.example", "b.example"), "key lookup failed")
    result, taken = arc_from_upstream(own, block("mx1.example.fr; arc=pass"))
    assert taken is not None
    assert result.status is AuthStatus.PASS
    assert result.sealers == ()  # cannot unlock the trusted-sealer DMARC override
    none, _ = arc_from_upstream(ArcResult(AuthStatus.NONE, 0, (), "not sealed"), block(SPF_PASS))
    assert none.status is AuthStatus.NONE

"""Authentication-Results: building ours, parsing and sorting upstream ones (RFC 8601)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milter.auth.authres import (
    format_authres,
    parse_authres,
    quote_value,
    sort_authres,
)
from milter.model.auth import AuthResult, AuthStatus

DKIM = AuthResult(
    "dkim",
    AuthStatus.PASS,
    "good signature; 2048-bit rsa key",
    {"header.d": "ameli.fr", "header.s": "sel1", "header.b": "aB+/9xyz", "header.i": "@ameli.fr"},
)
SPF = AuthResult("spf", AuthStatus.FAIL, 'matched "-all"', {"smtp.mailfrom": "x@phish.example"})
DMARC = AuthResult(
    "dmarc", AuthStatus.FAIL, "", {"header.from": "ameli.fr", "policy.dmarc": "reject"}
)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("ameli.fr", "ameli.fr"),
        ("user@ameli.fr", "user@ameli.fr"),
        ("@ameli.fr", "@ameli.fr"),
        ("first.last@mail.ameli.fr", "first.last@mail.ameli.fr"),
        ("aB+/9xyz", '"aB+/9xyz"'),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("a;b", '"a;b"'),
        ("line\r\nInjected: yes", '"line Injected: yes"'),
        ("", '""'),
    ],
)
def test_quote_value(value: str, quoted: str) -> None:
    assert quote_value(value) == quoted


def test_format_one_line() -> None:
    header = format_authres("mx.tocsin.example", [SPF, DKIM, DMARC], fold=" ")
    assert header == (
        'mx.tocsin.example; spf=fail reason="matched \\"-all\\"" smtp.mailfrom=x@phish.example; '
        'dkim=pass reason="good signature; 2048-bit rsa key" header.d=ameli.fr header.s=sel1 '
        'header.b="aB+/9xyz" header.i=@ameli.fr; '
        "dmarc=fail header.from=ameli.fr policy.dmarc=reject"
    )


def test_format_folds_for_the_milter_by_default() -> None:
    header = format_authres("mx.tocsin.example", [SPF, DMARC])
    assert header.count(";\n\t") == 2
    assert "\r" not in header


def test_format_no_results() -> None:
    assert format_authres("mx.tocsin.example", []) == "mx.tocsin.example; none"


def test_format_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="method"):
        format_authres("id", [AuthResult("dk im", AuthStatus.PASS)])
    with pytest.raises(ValueError, match="property"):
        format_authres("id", [AuthResult("dkim", AuthStatus.PASS, props={"d": "x"})])


def test_round_trip() -> None:
    parsed = parse_authres(format_authres("mx.tocsin.example", [SPF, DKIM, DMARC]))
    assert parsed is not None
    assert parsed.authserv_id == "mx.tocsin.example"
    assert parsed.results == (SPF, DKIM, DMARC)


@pytest.mark.parametrize(
    ("value", "authserv_id", "version", "methods"),
    [
        ("example.org; none", "example.org", None, []),
        ("example.org 1; spf=pass smtp.mailfrom=a@example.org", "example.org", 1, ["spf"]),
        (
            " (comment) example.org (another (nested) one);\n\tdkim=pass (1024-bit key)"
            " header.d=example.org header.b=ab+/Cd==; dmarc=none",
            "example.org",
            None,
            ["dkim", "dmarc"],
        ),
        ('"quoted id; with semicolon"; arc=pass', "quoted id; with semicolon", None, ["arc"]),
        ("mx.google.com;\r\n       dkim=pass header.i=@ameli.fr", "mx.google.com", None, ["dkim"]),
        ("example.org; spf=hardfail; iprev=pass policy.iprev=192.0.2.1", "example.org", None,
         ["iprev"]),
        ("example.org; dkim/1=pass header.d=a.fr", "example.org", None, ["dkim"]),
        ("example.org; x-tocsin=pass; ; ", "example.org", None, ["x-tocsin"]),
    ],
)  # fmt: skip
def test_parse_table(value: str, authserv_id: str, version: int | None, methods: list[str]) -> None:
    parsed = parse_authres(value)
    assert parsed is not None
    assert parsed.authserv_id == authserv_id
    assert parsed.version == version
    assert [r.method for r in parsed.results] == methods


def test_parse_details() -> None:
    parsed = parse_authres(
        'example.org; dkim=pass reason="good (really)" header.d=ameli.fr (comment)'
        ' header.b=ab+/Cd==; spf=softfail smtp.mailfrom="odd user"@ameli.fr'
    )
    assert parsed is not None
    dkim, spf = parsed.results
    assert dkim.reason == "good (really)"
    assert dkim.props == {"header.d": "ameli.fr", "header.b": "ab+/Cd=="}
    assert spf.result is AuthStatus.SOFTFAIL


def test_unknown_result_is_kept_aside() -> None:
    parsed = parse_authres("example.org; spf=hardfail smtp.mailfrom=a.fr")
    assert parsed is not None
    assert parsed.results == ()
    assert parsed.unparsed == ("spf=hardfail smtp.mailfrom=a.fr",)


@pytest.mark.parametrize("value", ["", "   ", "(only a comment)", "=pass"])
def test_unreadable_headers(value: str) -> None:
    assert parse_authres(value) is None


def test_sort_forged_trusted_ignored() -> None:
    values = [
        "mx.tocsin.example; dmarc=pass header.from=ameli.fr",  # forged: our id
        "relay.partner.example; dkim=pass header.d=ameli.fr",  # trusted upstream
        "MX.TOCSIN.EXAMPLE; spf=pass",  # forged, other case
        "mx.google.com; dkim=pass header.d=ameli.fr",  # not trusted
        "(just a comment)",  # unreadable
        '"mx.tocsin.example" ; arc=pass',  # forged, quoted
    ]
    sorted_ = sort_authres(values, "mx.tocsin.example", {"Relay.Partner.Example"})
    assert sorted_.forged == (0, 2, 5)
    assert sorted_.removal_order() == (5, 2, 0)
    assert [index for index, _ in sorted_.trusted] == [1]
    assert sorted_.trusted[0][1].results[0].props["header.d"] == "ameli.fr"
    assert sorted_.ignored == (3, 4)


def test_our_id_wins_over_the_trusted_list() -> None:
    sorted_ = sort_authres(
        ["mx.tocsin.example; spf=pass"], "mx.tocsin.example", {"mx.tocsin.example"}
    )
    assert sorted_.forged == (0,)
    assert sorted_.trusted == ()


@given(st.text(max_size=200))
def test_parse_never_raises(value: str) -> None:
    parse_authres(value)


@given(st.text(max_size=60), st.text(max_size=60))
def test_formatted_values_survive_parsing(reason: str, prop: str) -> None:
    result = AuthResult("dkim", AuthStatus.NEUTRAL, reason, {"header.d": prop})
    parsed = parse_authres(format_authres("id.example", [result], fold=" "))
    assert parsed is not None
    assert parsed.authserv_id == "id.example"
    assert len(parsed.results) == 1
    assert "\n" not in format_authres("id.example", [result], fold=" ")


PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@given(PRINTABLE, PRINTABLE)
def test_printable_values_round_trip_exactly(reason: str, prop: str) -> None:
    result = AuthResult("dkim", AuthStatus.PASS, reason.strip(), {"header.d": prop.strip()})
    parsed = parse_authres(format_authres("id.example", [result]))
    assert parsed is not None
    assert parsed.results == (result,)

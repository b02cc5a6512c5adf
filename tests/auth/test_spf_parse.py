"""SPF record parser and macro expansion (RFC 7208 §4.6, §5, §6, §7), no DNS."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milter.auth.spf_record import (
    MacroContext,
    Mechanism,
    SpfSyntaxError,
    expand,
    expand_domain,
    is_spf_record,
    parse_record,
    uses_macro,
    validate_macro_string,
)

# §7.4 examples: sender strong-bad@email.example.com, clients 192.0.2.3 / 2001:db8::cb01.
CTX4 = MacroContext(
    sender="strong-bad@email.example.com",
    domain="email.example.com",
    ip=ipaddress.ip_address("192.0.2.3"),
    helo="mx.example.org",
    validated="mx.example.org",
    receiver="mail.example.net",
    timestamp=1234567890,
)
CTX6 = MacroContext(
    "strong-bad@email.example.com",
    "email.example.com",
    ipaddress.ip_address("2001:db8::cb01"),
    "mx.example.org",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=spf1", True),
        ("V=SPF1 -all", True),
        ("v=spf1  ", True),
        ("v=spf10", False),
        ("v=spf1-all", False),
        ("spf2.0/pra -all", False),
        ("", False),
    ],
)
def test_is_spf_record(text: str, expected: bool) -> None:
    assert is_spf_record(text) is expected


def test_parse_mechanisms_and_modifiers() -> None:
    record = parse_record(
        "v=spf1 +a -mx:mail.example.com/24//64 ~ptr ?include:_spf.example.com "
        "ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.bl.example.org "
        "redirect=_spf.example.net exp=why.%{d} foo=bar -all"
    )
    mechs = record.mechanisms
    assert [m.name for m in mechs] == [
        "a", "mx", "ptr", "include", "ip4", "ip6", "exists", "all",
    ]  # fmt: skip
    assert [m.result for m in mechs][:4] == ["pass", "fail", "softfail", "neutral"]
    assert mechs[1] == Mechanism("-", "mx", "mail.example.com", 24, 64)
    assert mechs[4].network == ipaddress.ip_network("192.0.2.0/24")
    assert mechs[5].network == ipaddress.ip_network("2001:db8::/32")
    assert mechs[6].domain_spec == "%{i}.bl.example.org"
    assert record.redirect == "_spf.example.net"
    assert record.exp == "why.%{d}"
    assert record.unknown == (("foo", "bar"),)
    assert str(mechs[1]) == "-mx:mail.example.com/24//64"


def test_parse_case_spacing_and_host_bits() -> None:
    record = parse_record("v=spf1   A/24   IP4:192.0.2.77/24   MX//0  ")
    assert [(m.name, m.cidr4, m.cidr6) for m in record.mechanisms] == [
        ("a", 24, None),
        ("ip4", None, None),
        ("mx", None, 0),
    ]
    assert record.mechanisms[1].network == ipaddress.ip_network("192.0.2.0/24")
    assert parse_record("v=spf1").mechanisms == ()


@pytest.mark.parametrize(
    "text",
    [
        "v=spf1 foo",  # unknown mechanism
        "v=spf1 -",  # qualifier alone
        "v=spf1 all:x.example.com",
        "v=spf1 include",  # include needs a domain
        "v=spf1 exists:",
        "v=spf1 ptr/24",  # no CIDR on ptr
        "v=spf1 mx:",  # empty domain-spec
        "v=spf1 a:museum",  # domain-end needs a dot and a toplabel
        "v=spf1 a:foo.123",  # all-numeric toplabel
        "v=spf1 a:example.-com",
        "v=spf1 a/33",
        "v=spf1 a//129",
        "v=spf1 a/024",  # no leading zeros
        "v=spf1 ip4:192.0.2.1/33",
        "v=spf1 ip4:2001:db8::1",
        "v=spf1 ip6:192.0.2.1",
        "v=spf1 ip4:192.0.2",
        "v=spf1 ip4",
        "v=spf1 redirect=a.example.com redirect=b.example.com",
        "v=spf1 exp=a.example.com exp=b.example.com",
        "v=spf1 a:%{x}.example.com",  # unknown macro letter
        "v=spf1 a:%{c}.example.com",  # c/r/t only in explanations
        "v=spf1 a:%{d0}.example.com",  # zero transformer
        "v=spf1 a:%.example.com",  # lone percent
        "v=spf1 ip4:192.0.2.5\n",  # control character
        "v=spf1 a:caf\u00e9.example.com",  # §3.1: 7-bit ASCII only
        "v=spf1 foo=%{z}",  # unknown modifiers must still be valid macro-strings
        "not spf at all",
    ],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_record(text)


@pytest.mark.parametrize(
    ("macro", "expected"),
    [  # RFC 7208 §7.4
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{h}", "mx.example.org"),
        ("%{p}", "mx.example.org"),
        ("%%%_%-", "% %20"),
    ],
)
def test_rfc_macro_examples(macro: str, expected: str) -> None:
    assert expand(macro, CTX4) == expected


def test_ipv6_macros() -> None:
    nibbles = "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
    assert expand("%{ir}.%{v}._spf.%{d2}", CTX6) == f"{nibbles}.ip6._spf.example.com"
    assert expand("%{c}", CTX6, exp=True) == "2001:db8::cb01"
    assert expand("%{p}", CTX6) == "unknown"  # not validated


def test_explanation_only_macros_and_url_escaping() -> None:
    assert expand("%{c} %{r} %{t}", CTX4, exp=True) == "192.0.2.3 mail.example.net 1234567890"
    for letter in "crt":
        with pytest.raises(SpfSyntaxError):
            expand(f"%{{{letter}}}", CTX4)
    ctx = MacroContext("jack&jill=up@example.com", "example.com", CTX4.ip, "h.example")
    assert expand("%{L}", ctx) == "jack%26jill%3Dup"
    assert expand("%{l}", ctx) == "jack&jill=up"


def test_local_part_defaults_to_postmaster() -> None:
    ctx = MacroContext("@example.net", "example.net", CTX4.ip, "h.example")
    assert expand("%{l}", ctx) == "postmaster"
    assert expand("%{o}", ctx) == "example.net"


def test_expanded_domain_truncated_to_253() -> None:
    ctx = MacroContext(("a" * 60 + ".") * 5 + "x@example.com", "example.com", CTX4.ip, "h")
    name = expand_domain("%{l}.example.com", ctx)
    assert len(name) <= 253
    assert name.endswith(".x.example.com")
    assert not name.startswith(".")


def test_uses_macro_and_validation() -> None:
    assert uses_macro("%{p}.x", "p")
    assert uses_macro("%{P2r}.x", "p")
    assert not uses_macro("%{i}.x", "p")
    validate_macro_string("%{c} and spaces", exp=True)
    with pytest.raises(SpfSyntaxError):
        validate_macro_string("two words")


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=60))
def test_parser_fails_only_with_syntax_errors(tail: str) -> None:
    try:
        record = parse_record("v=spf1 " + tail)
    except SpfSyntaxError:
        return
    for mech in record.mechanisms:  # whatever parses re-parses to the same directive
        assert parse_record(f"v=spf1 {mech}").mechanisms == (mech,)


def test_directive_text_made_once_names_each_directive() -> None:
    """The text a result names (``matched …``) is made when the record is parsed."""
    record = parse_record(
        "v=spf1 ip4:192.0.2.0/24 ~ip6:2001:db8::/32 a/24 ?include:_spf.example.org "
        "exists:%{i}.x.example.org -all"
    )
    texts = [str(m) for m in record.mechanisms]
    assert texts == [
        "ip4:192.0.2.0/24",
        "~ip6:2001:db8::/32",
        "a/24",
        "?include:_spf.example.org",
        "exists:%{i}.x.example.org",
        "-all",
    ]
    assert [m.text for m in record.mechanisms] == texts
    assert record.mechanisms[0] == Mechanism("+", "ip4", network=record.mechanisms[0].network)

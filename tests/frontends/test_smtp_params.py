"""ESMTP parameters and XFORWARD attributes, parsed without aiosmtpd's losses."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP

from milter.frontends.smtp.params import (
    MAIL_KEYWORDS,
    RCPT_KEYWORDS,
    ParamError,
    parse_address,
    parse_params,
    parse_xforward,
    xforward_lines,
    xforward_value,
    xtext_decode,
    xtext_encode,
)
from milter.frontends.smtp.server import parse_reply
from milter.model.plan import SmtpReply


def test_values_keep_their_case_and_go_on_only_where_offered() -> None:
    params = parse_params("ret=HDRS ENVID=Ab+2Bc body=8BITMIME SMTPUTF8 SIZE=10", MAIL_KEYWORDS)
    assert params.get("ENVID") == "Ab+2Bc"
    assert params.for_next_hop({"dsn", "8bitmime", "smtputf8", "size"}) == [
        "RET=HDRS",
        "ENVID=Ab+2Bc",
        "BODY=8BITMIME",
        "SMTPUTF8",
    ]
    assert params.for_next_hop({"8bitmime"}) == ["BODY=8BITMIME"]


@pytest.mark.parametrize(
    ("text", "allowed", "reply"),
    [
        ("FOO=1", MAIL_KEYWORDS, "555 5.5.4 FOO parameter not supported"),
        ("NOTIFY=NEVER", MAIL_KEYWORDS, "555 5.5.4 NOTIFY parameter not supported"),
        ("RET=ALL", MAIL_KEYWORDS, "501 5.5.4 RET must be FULL or HDRS"),
        ("BODY=BINARYMIME", MAIL_KEYWORDS, "501 5.5.4 BODY must be 7BIT or 8BITMIME"),
        ("SMTPUTF8=yes", MAIL_KEYWORDS, "501 5.5.4 SMTPUTF8 takes no value"),
        (
            "NOTIFY=NEVER,SUCCESS",
            RCPT_KEYWORDS,
            "501 5.5.4 NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY",
        ),
        ("ORCPT=x@y", RCPT_KEYWORDS, "501 5.5.4 ORCPT must be addr-type;xtext"),
        ("ENVID=", MAIL_KEYWORDS, "501 5.5.4 Syntax error in parameters"),
        ("RET=FULL RET=HDRS", MAIL_KEYWORDS, "501 5.5.4 RET given twice"),
    ],
)
def test_bad_parameters_get_a_clear_reply(text: str, allowed: frozenset[str], reply: str) -> None:
    with pytest.raises(ParamError) as err:
        parse_params(text, allowed)
    assert err.value.reply == reply


def test_xtext_round_trip() -> None:
    assert xtext_encode("a+b=c é") == "a+2Bb+3Dc+20+C3+A9"
    assert xtext_decode("a+2Bb+3Dc") == "a+b=c"


def test_xforward_values_and_lines() -> None:
    attributes = parse_xforward("NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1 HELO=h+2Bx IDENT=ABC")
    assert xforward_value(attributes, "NAME") is None
    assert xforward_value(attributes, "ADDR") == "2001:db8::1"
    assert xforward_value(attributes, "HELO") == "h+x"
    assert xforward_lines(attributes, ["ADDR", "HELO"]) == ["ADDR=IPV6:2001:db8::1 HELO=h+2Bx"]
    long = {"NAME": "n" * 255, "HELO": "h" * 255}
    assert [len(line) for line in xforward_lines(long, ["NAME", "HELO"])] == [260, 260]
    with pytest.raises(ParamError):
        parse_xforward("COLOUR=blue")


def test_next_hop_replies_become_smtp_replies() -> None:
    assert parse_reply("550 5.1.1 No such user") == SmtpReply(550, "5.1.1", "No such user")
    assert parse_reply("452 Too busy") == SmtpReply(452, "4.0.0", "Too busy")


def test_smtp_addresses_are_named_as_the_admin_wrote_them() -> None:
    from milter.frontends.listen import ListenError, parse_endpoint

    assert parse_endpoint("127.0.0.1:10025").port == 10025
    assert parse_endpoint("[::1]:10025").host == "::1"
    with pytest.raises(
        ListenError, match=r"^'nowhere': expected HOST:PORT \(the port is missing\)$"
    ):
        parse_endpoint("nowhere")


ADDRESS_ARGS = [
    "<user@example.org>",
    "<user@example.org> SIZE=100 BODY=8BITMIME",
    "  <user@example.org>",
    "<>",
    "<> RET=HDRS",
    "user@example.org",
    "user@example.org SIZE=1",
    '<"quoted local"@example.org>',
    "<@relay.example:user@example.org>",
    "<user@[192.0.2.1]>",
    "<expéditeur@exemple.fr> SMTPUTF8",
    "<user@example.org",
    "<user>",
    "<<user@example.org>>",
    "<user@@example.org>",
    "@example.org",
    "",
    "   ",
    "<user@example.org>trailing",
]


@pytest.mark.parametrize("arg", ADDRESS_ARGS)
def test_parse_address_answers_as_aiosmtpd(arg: str) -> None:
    """aiosmtpd's own parser (one real SMTP instance) is the reference."""
    reference = SMTP(None)._getaddr(arg)  # type: ignore[no-untyped-call]
    address, rest = parse_address(arg)
    assert address == reference[0]
    if address is not None:
        assert rest == reference[1]

"""Attacker text with Unicode digits ("¹", "²") is read as not-a-number, never a crash.

``str.isdigit`` accepts superscripts that ``int`` refuses; every parser of header,
DNS, URL and SMTP text must check ASCII first (found by the Hypothesis fuzz of A-R).
"""

from __future__ import annotations

import pytest

from milter.auth.authres import parse_authres
from milter.auth.dmarc_record import RecordError, parse_record
from milter.frontends.smtp.params import ParamError, parse_params
from milter.text.host import parse_ipv4


def test_authres_version_in_superscript_is_no_version() -> None:
    parsed = parse_authres("mx.example.fr ¹; spf=pass smtp.mailfrom=a.example")
    assert parsed is not None
    assert parsed.authserv_id == "mx.example.fr"


def test_dmarc_pct_in_superscript_is_a_record_error_or_ignored() -> None:
    try:
        record = parse_record("v=DMARC1; p=reject; pct=¹⁰")
    except RecordError:
        return
    assert record.policy is not None


def test_url_host_ending_in_a_superscript_is_not_an_ipv4_address() -> None:
    assert parse_ipv4("1.2.3.¹") is None
    assert parse_ipv4("¹.2.3.4") is None
    assert parse_ipv4("1.2.3.4") is not None


def test_smtp_size_in_superscript_is_refused_with_a_reply() -> None:
    with pytest.raises(ParamError):
        parse_params("SIZE=¹²³", frozenset({"SIZE"}))

"""One skeleton for names and domains, one PSL snapshot, one header field splitter."""

from __future__ import annotations

from importlib.metadata import version

from milter.text import psl
from milter.text.confusables import fold, phrase_key, skeleton
from milter.text.headers import field_spans, find_field, first_value, parse_fields


def test_display_name_and_domain_share_one_skeleton() -> None:
    assert skeleton("Arneli") == skeleton("arneli.fr").removesuffix(".fr") == skeleton("ameli")
    assert skeleton("АМЕLI") == skeleton("ameli")  # Cyrillic capitals
    assert skeleton("ａｍｅｌｉ") == skeleton("ameli")  # full-width
    assert skeleton("Assurance Maladie") == skeleton("assurance rnaladie")
    assert skeleton("Caisse des Dépôts") == skeleton("caisse des depots")
    assert skeleton("ameli") != skeleton("amazon")


def test_fold_matches_phrases_without_merging_letters() -> None:
    assert fold("Αmazοn") == "amazon"
    assert phrase_key("Vos DROITS  CPF expirent !") == " vos droits cpf expirent "
    assert fold("corne") == "corne"  # fold never merges rn


def test_psl_snapshot_is_the_one_recorded() -> None:
    assert version("tldextract") == psl.TLDEXTRACT_VERSION, (
        "tldextract changed: update milter/text/psl.py SNAPSHOT from its bundled list"
    )
    assert psl.registrable_domain("a.b.impots.gouv.fr") == "impots.gouv.fr"


_BLOCK = (
    b"From: a@b.fr\r\nSubject: one\r\n two\r\nX-Junk line\r\n"
    b"Content-Type: text/plain;\r\n\tcharset=utf-8\r\n\r\nbody: not a header\r\n"
)


def test_header_fields_split_once_for_everyone() -> None:
    spans = field_spans(_BLOCK)
    assert [_BLOCK[a:b] for a, b in spans][1] == b"Subject: one\r\n two\r\n"
    assert len(spans) == 4  # the empty line ends the block
    assert parse_fields(_BLOCK) == (
        ("From", "a@b.fr"),
        ("Subject", "one two"),
        ("Content-Type", "text/plain; charset=utf-8"),
    )
    start, end = find_field(_BLOCK, b"content-type") or (0, 0)
    assert _BLOCK[start:end] == b"Content-Type: text/plain;\r\n\tcharset=utf-8"
    assert first_value(_BLOCK, "subject") == "one two"
    assert first_value(_BLOCK, "body") == ""


def test_header_splitter_is_linear_on_a_huge_line_and_many_fields() -> None:
    huge = b"X-Long: " + b"a" * 5_000_000 + b"\r\n" + b"X: y\r\n" * 10_000 + b"\r\n"
    spans = field_spans(huge)
    assert len(spans) == 10_001
    assert spans[0][1] == 5_000_010

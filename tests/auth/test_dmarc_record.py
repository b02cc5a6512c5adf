"""DMARC record parser and the pure Organizational Domain rules (RFC 9989)."""

from __future__ import annotations

import pytest

from milter.auth.dmarc_record import (
    Alignment,
    DmarcRecord,
    Policy,
    PsdFlag,
    RecordError,
    is_dmarc_record,
    parse_record,
)
from milter.auth.orgdomain import (
    WalkStep,
    organizational_domain,
    psl_organizational_domain,
    walk_names,
)

VALID = [
    ("v=DMARC1; p=reject", DmarcRecord(Policy.REJECT)),
    ("v=DMARC1;p=reject;", DmarcRecord(Policy.REJECT)),
    ("  v = DMARC1 ; p = Quarantine ", DmarcRecord(Policy.QUARANTINE)),
    (
        "v=DMARC1; p=quarantine; sp=none; np=reject; adkim=s; aspf=s; t=y; psd=n;"
        " rua=mailto:dmarc@ameli.fr,mailto:x@y.fr; ruf=mailto:f@ameli.fr; fo=1; ri=86400",
        DmarcRecord(
            Policy.QUARANTINE,
            subdomain_policy=Policy.NONE,
            nonexistent_policy=Policy.REJECT,
            psd=PsdFlag.NO,
            testing=True,
            adkim=Alignment.STRICT,
            aspf=Alignment.STRICT,
            rua=("mailto:dmarc@ameli.fr", "mailto:x@y.fr"),
            ruf=("mailto:f@ameli.fr",),
        ),
    ),
    # pct is parsed for display and has no effect (RFC 9989 removed it)
    ("v=DMARC1; p=reject; pct=20", DmarcRecord(Policy.REJECT, pct=20)),
    ("v=DMARC1; p=reject; pct=abc", DmarcRecord(Policy.REJECT)),
    ("v=DMARC1; p=reject; pct=300", DmarcRecord(Policy.REJECT)),
    ("v=DMARC1; p=reject; psd=y", DmarcRecord(Policy.REJECT, psd=PsdFlag.YES)),
    ("v=DMARC1; p=none; psd=u", DmarcRecord(Policy.NONE)),
    ("v=DMARC1; p=reject; future=tag; x_y=1", DmarcRecord(Policy.REJECT)),
    ("v=DMARC1; t=n; p=reject", DmarcRecord(Policy.REJECT)),
    # missing or invalid p= with a valid rua= reads as p=none
    ("v=DMARC1; rua=mailto:d@ameli.fr", DmarcRecord(Policy.NONE, rua=("mailto:d@ameli.fr",))),
    ("v=DMARC1; p=bogus; rua=mailto:d@a.fr", DmarcRecord(Policy.NONE, rua=("mailto:d@a.fr",))),
    ("v=DMARC1; p=none; rua=not a uri", DmarcRecord(Policy.NONE)),
]

INVALID = [
    "v=DMARC1",
    "v=DMARC1; p=bogus",
    "v=DMARC1; rua=not-a-uri",
    "v=DMARC1; p=reject; sp=maybe",
    "v=DMARC1; p=reject; np=all",
    "v=DMARC1; p=reject; psd=x",
    "v=DMARC1; p=reject; t=yes",
    "v=DMARC1; p=reject; adkim=x",
    "v=DMARC1; p=reject; p=none",
    "v=DMARC1; p=reject; garbage",
    "v=DMARC1; p=reject; =x",
]

NOT_DMARC = ["p=reject; v=DMARC1", "v=DMARC2; p=reject", "v=spf1 -all", "", "v=DMARC10; p=none"]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_records(text: str, expected: DmarcRecord) -> None:
    assert parse_record(text) == expected


@pytest.mark.parametrize("text", INVALID)
def test_invalid_records(text: str) -> None:
    assert is_dmarc_record(text)
    with pytest.raises(RecordError):
        parse_record(text)


@pytest.mark.parametrize("text", NOT_DMARC)
def test_not_dmarc_records(text: str) -> None:
    assert not is_dmarc_record(text)
    with pytest.raises(RecordError):
        parse_record(text)


def test_testing_downgrade() -> None:
    assert Policy.REJECT.downgraded() is Policy.QUARANTINE
    assert Policy.QUARANTINE.downgraded() is Policy.NONE
    assert Policy.NONE.downgraded() is Policy.NONE


@pytest.mark.parametrize(
    ("domain", "names"),
    [
        ("fr", ("fr",)),
        ("ameli.fr", ("ameli.fr", "fr")),
        ("a.b.ameli.fr", ("a.b.ameli.fr", "b.ameli.fr", "ameli.fr", "fr")),
        ("1.2.3.4.5.6.7.8", ("1.2.3.4.5.6.7.8", "2.3.4.5.6.7.8", "3.4.5.6.7.8",
                             "4.5.6.7.8", "5.6.7.8", "6.7.8", "7.8", "8")),
        # RFC 9989 §4.10.1 step 5: from 8 labels or more, jump straight to the last 7
        (
            "a.b.c.d.e.f.g.h.i.j",
            ("a.b.c.d.e.f.g.h.i.j", "d.e.f.g.h.i.j", "e.f.g.h.i.j", "f.g.h.i.j",
             "g.h.i.j", "h.i.j", "i.j", "j"),
        ),
    ],
)  # fmt: skip
def test_walk_names(domain: str, names: tuple[str, ...]) -> None:
    assert walk_names(domain) == names
    assert len(walk_names(domain)) <= 8


def _steps(*pairs: tuple[str, str | None]) -> tuple[WalkStep, ...]:
    return tuple(WalkStep(d, parse_record(t) if t else None) for d, t in pairs)


@pytest.mark.parametrize(
    ("domain", "steps", "org"),
    [
        ("a.ameli.fr", _steps(("a.ameli.fr", None), ("ameli.fr", None), ("fr", None)),
         "a.ameli.fr"),
        ("a.ameli.fr", _steps(("a.ameli.fr", None), ("ameli.fr", "v=DMARC1; p=reject"),
                              ("fr", None)), "ameli.fr"),
        # psd=n marks the Organizational Domain itself
        ("x.a.ameli.fr", _steps(("x.a.ameli.fr", None), ("a.ameli.fr", "v=DMARC1;p=none;psd=n")),
         "a.ameli.fr"),
        # psd=y: the name one label below the Public Suffix Domain
        ("x.impots.gouv.fr", _steps(("x.impots.gouv.fr", None), ("impots.gouv.fr", None),
                                    ("gouv.fr", "v=DMARC1; p=reject; psd=y")), "impots.gouv.fr"),
        # psd=y at the starting domain itself: it is its own Organizational Domain
        ("gouv.fr", _steps(("gouv.fr", "v=DMARC1; p=reject; psd=y")), "gouv.fr"),
        # otherwise the record with the fewest labels
        ("a.b.ameli.fr", _steps(("a.b.ameli.fr", "v=DMARC1; p=none"), ("b.ameli.fr", None),
                                ("ameli.fr", "v=DMARC1; p=reject"), ("fr", None)), "ameli.fr"),
    ],
)  # fmt: skip
def test_organizational_domain(domain: str, steps: tuple[WalkStep, ...], org: str) -> None:
    assert organizational_domain(domain, steps) == org


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("news.ameli.fr", "ameli.fr"),
        ("fake.gouv.fr", "fake.gouv.fr"),  # gouv.fr is a public suffix on the PSL
        ("a.impots.gouv.fr", "impots.gouv.fr"),
        ("gouv.fr", "gouv.fr"),
    ],
)
def test_psl_organizational_domain_uses_bundled_snapshot(domain: str, org: str) -> None:
    assert psl_organizational_domain(domain) == org

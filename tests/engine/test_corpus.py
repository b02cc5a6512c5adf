"""The shipped policy over the real shared corpus: no crash, lures flagged, ham clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from milter.engine import scan
from milter.model.envelope import Envelope
from milter.model.findings import Severity
from milter.model.verdict import Disposition
from tests.conftest import EXAMPLES

CPF_FLAGS = ("CPF_fr", "compte_formation", "moncompteformation")


def cpf_lures(corpus: Path) -> list[Path]:
    rows = (corpus / "phish-fr" / "index.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [
        corpus / "phish-fr" / row.split("\t")[0]
        for row in rows
        if any(flag in row.split("\t")[1] for flag in CPF_FLAGS)
    ]


async def test_every_cpf_lure_is_flagged_naming_the_brand(corpus: Path, policy) -> None:
    lures = cpf_lures(corpus)
    assert len(lures) >= 8
    for path in lures:
        result = await scan(path.read_bytes(), Envelope(), policy)
        assert result.verdict.brand == "cpf", path.name
        assert result.verdict.disposition in (Disposition.QUARANTINE, Disposition.REJECT)
        assert any(f.brand == "cpf" and f.severity >= 3 for f in result.verdict.findings)


async def test_no_ham_message_gets_a_brand_finding(corpus: Path, policy) -> None:
    files = sorted(p for p in (corpus / "ham").rglob("*") if p.is_file())
    assert len(files) > 2000
    flagged = []
    for path in files:
        result = await scan(path.read_bytes(), Envelope(), policy)
        if any(f.brand for f in result.verdict.findings):
            flagged.append(path.name)
    assert flagged == []


@pytest.mark.parametrize("folder", ["phish-fr", "robustness"])
async def test_every_message_gets_a_verdict(corpus: Path, policy, folder: str) -> None:
    files = sorted(p for p in (corpus / folder).rglob("*") if p.is_file() and p.name != "index.tsv")
    assert files
    defect_reasons = 0
    for path in files:
        result = await scan(path.read_bytes(), Envelope(), policy)
        assert result.verdict.disposition in Disposition
        defect_reasons += any(f.code == "MIME_DEFECT" for f in result.verdict.findings)
    if folder == "robustness":
        assert defect_reasons > 0


async def test_lures_of_every_policy_brand_name_their_brand(corpus: Path, policy) -> None:
    """Chronopost and ANCV lures are claims of policy brands (one registry, no stand-in)."""
    expected = {"chronopost": "chronopost", "ancv_cheques_vacances": "ancv"}
    rows = (corpus / "phish-fr" / "index.tsv").read_text(encoding="utf-8").splitlines()[1:]
    seen = 0
    for row in rows:
        name, flags = row.split("\t")[:2]
        if flags in expected:
            result = await scan((corpus / "phish-fr" / name).read_bytes(), Envelope(), policy)
            assert result.verdict.brand == expected[flags], name
            seen += 1
    assert seen >= 4


async def test_example_cpf_lure_lookalike_behind_redirector_is_critical(policy) -> None:
    """The real honeypot lures hide their targets behind trackers we cannot unwrap; the
    example lure's redirector does unwrap, to a lookalike, in a message claiming CPF."""
    result = await scan((EXAMPLES / "cpf-lure.eml").read_bytes(), Envelope(), policy)
    lookalikes = [f for f in result.verdict.findings if f.code == "LINK_LOOKALIKE"]
    assert lookalikes
    assert all(f.severity is Severity.CRITICAL for f in lookalikes)
    assert {f.evidence["context"] for f in lookalikes} == {"brand-claimed"}

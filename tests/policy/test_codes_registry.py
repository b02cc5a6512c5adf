"""The code registry is the one vocabulary: docs follow it and findings obey it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from milter.model.codes import CODES, Code, markdown_table, undeclared_evidence
from milter.model.findings import Finding, Severity

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def test_docs_code_table_is_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- codes:start -->\n(.*?)<!-- codes:end -->", text, re.S)
    assert block is not None, "docs/policy.md lost its codes markers"
    assert block.group(1) == markdown_table(), "regenerate: python -m milter.model.codes"


def test_every_code_is_registered_once_with_its_check_and_evidence() -> None:
    assert set(CODES) == set(Code)
    for info in CODES.values():
        assert info.check
        assert info.doc
        assert info.severity
        assert len(set(info.evidence)) == len(info.evidence)


def test_a_finding_refuses_an_unknown_code() -> None:
    with pytest.raises(ValueError, match="DMARC_FAILL"):
        Finding("DMARC_FAILL", "auth", Severity.LOW, "typo")
    assert Finding("URGENCY", "phrases", Severity.LOW, "ok").code is Code.URGENCY


def test_undeclared_evidence_is_reported() -> None:
    assert undeclared_evidence("URGENCY", {"phrase", "set"}) == set()
    assert undeclared_evidence("URGENCY", {"phrase", "colour"}) == {"colour"}

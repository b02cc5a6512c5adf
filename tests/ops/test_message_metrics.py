"""Per-message metrics: every finding code counted once per message that has it."""

from __future__ import annotations

from prometheus_client import REGISTRY

from milter.ops.metrics import record_message


def _findings(code: str) -> float:
    return REGISTRY.get_sample_value("tocsin_findings_total", {"code": code}) or 0.0


def test_finding_codes_are_counted_per_message() -> None:
    before = {code: _findings(code) for code in ("TEST_CODE_A", "TEST_CODE_B")}
    for codes in (["TEST_CODE_A", "TEST_CODE_A", "TEST_CODE_B"], ["TEST_CODE_A"]):
        record_message(
            action="deliver",
            verdict="accept",
            would=None,
            brand=None,
            codes=codes,
            seconds=0.01,
            failed=False,
        )
    assert _findings("TEST_CODE_A") - before["TEST_CODE_A"] == 2
    assert _findings("TEST_CODE_B") - before["TEST_CODE_B"] == 1

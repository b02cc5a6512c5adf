"""The ARC validation test suite (arc-draft-validation-tests.yml), read from the shared corpus.

Every scenario's ``cv`` is compared with our ``check_arc`` status. The DNS key records in
the suite are served by the in-memory ``FakeResolver``; their ``txt-records`` tables are
shared by all scenarios (README: "DKIM records … are shared across scenarios").

Expected ``cv`` values map as: Pass → pass, Fail → fail, None → none. Three scenarios
(cv_fail_i1_as_cv_fail, cv_fail_i2_as2_fail, cv_fail_i2_as1_fail) expect an *empty* cv:
the suite predates RFC 8617 and meant "a sealer already recorded cv=fail, stop". RFC 8617
§5.2 step 2 makes that status "fail", which is what we report (with the reason "chain
terminated"), so those count as passes when we say fail for that reason.

Nothing is left out: all 171 scenarios run. Result at the time of writing: 171/171.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from milter.auth.arc import check_arc
from milter.dns.fake import FakeResolver
from milter.model.auth import AuthStatus

SUITE = (
    Path(__file__).resolve().parents[2]
    / "../shared/corpus/auth/arc_test_suite/tests/arc-draft-validation-tests.yml"
)
EXPECTED = {"pass": AuthStatus.PASS, "fail": AuthStatus.FAIL, "none": AuthStatus.NONE}


def load_suite(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """(named scenarios, every TXT record of every document)."""
    scenarios: list[tuple[str, dict[str, Any]]] = []
    records: dict[str, str] = {}
    with path.open(encoding="utf-8") as stream:
        for doc in yaml.safe_load_all(stream):
            if not doc:
                continue
            records |= doc.get("txt-records") or doc.get("txt_records") or {}
            scenarios += list(doc.get("tests", {}).items())
    return scenarios, records


if SUITE.exists():
    SCENARIOS, RECORDS = load_suite(SUITE)
else:  # pragma: no cover - depends on the shared corpus being present
    SCENARIOS, RECORDS = [], {}


def resolver() -> FakeResolver:
    return FakeResolver({(name, "TXT"): text for name, text in RECORDS.items()})


@pytest.mark.skipif(not SUITE.exists(), reason=f"ARC test suite not found at {SUITE}")
def test_suite_is_complete() -> None:
    assert len(SCENARIOS) == 171


@pytest.mark.skipif(not SUITE.exists(), reason=f"ARC test suite not found at {SUITE}")
@pytest.mark.parametrize(
    ("name", "scenario"), SCENARIOS or [("absent", {})], ids=[n for n, _ in SCENARIOS] or None
)
async def test_arc_validation_suite(name: str, scenario: dict[str, Any]) -> None:
    result = await check_arc(scenario["message"].encode("utf-8"), resolver())
    expected = str(scenario["cv"]).strip().lower()
    if expected == "":
        assert result.status is AuthStatus.FAIL, result.reason
        assert result.reason.startswith("chain terminated"), result.reason
    else:
        assert result.status is EXPECTED[expected], result.reason

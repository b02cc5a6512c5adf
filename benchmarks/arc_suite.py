"""Run the ARC validation suite against ``milter.auth.arc`` and print the pass count.

Usage (from the repository root): ``.venv/bin/python benchmarks/arc_suite.py [-v]``
The suite is read from ../shared/corpus/auth/arc_test_suite/ and never copied here.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml

from milter.auth.arc import check_arc
from milter.dns.fake import FakeResolver
from milter.model.auth import AuthStatus

SUITE = (
    Path(__file__).resolve().parents[1]
    / "../shared/corpus/auth/arc_test_suite/tests/arc-draft-validation-tests.yml"
)
# An empty cv in this pre-RFC suite means "a sealer already wrote cv=fail";
# RFC 8617 §5.2 step 2 calls that status fail.
EXPECTED = {"pass": "pass", "fail": "fail", "none": "none", "": "fail"}


async def run(verbose: bool) -> tuple[int, int]:
    """(passed, total) over every scenario of the suite."""
    scenarios: dict[str, dict[str, object]] = {}
    records: dict[str, str] = {}
    with SUITE.open(encoding="utf-8") as stream:
        for doc in filter(None, yaml.safe_load_all(stream)):
            records |= doc.get("txt-records") or doc.get("txt_records") or {}
            scenarios |= doc.get("tests", {})
    resolver = FakeResolver({(name, "TXT"): text for name, text in records.items()})
    passed = 0
    for name, scenario in scenarios.items():
        result = await check_arc(str(scenario["message"]).encode(), resolver)
        raw = str(scenario["cv"]).strip().lower()
        expected = EXPECTED[raw]
        terminated = raw != "" or result.reason.startswith("chain terminated")
        if result.status == AuthStatus(expected) and terminated:
            passed += 1
        elif verbose:
            print(f"FAIL {name}: expected {expected}, got {result.status} ({result.reason})")
    return passed, len(scenarios)


def main() -> int:
    """Print "ARC validation suite: N/M passed"; exit 1 unless all pass."""
    if not SUITE.exists():
        print(f"ARC validation suite not found at {SUITE}")
        return 2
    passed, total = asyncio.run(run("-v" in sys.argv[1:]))
    print(f"ARC validation suite: {passed}/{total} passed")
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main())

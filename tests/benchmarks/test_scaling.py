"""Smoke test of the scaling benchmark: tiny sizes, a few extra brands, both tables print.

No timing is asserted; this checks that the sized messages are the sizes asked for and
that the brand table really loads the extra brands (a policy with them must still scan).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness.corpus import sized
from benchmarks.scaling import brand_policy
from milter.policy.loader import load_policy
from tests.support.scripts import run_script

QUICK = ["--quick", "--repeat", "1", "--messages", "6", "--brands", "0,20"]


@pytest.mark.parametrize(("kind", "size"), [("newsletter", 40_000), ("plain", 30_000)])
def test_sized_messages_grow_with_the_size_asked(kind: str, size: int) -> None:
    small, large = sized(kind, size), sized(kind, size * 4)
    assert size * 0.5 < len(small.raw) < size * 1.5
    assert 3 < len(large.raw) / len(small.raw) < 5


def test_brand_policy_adds_that_many_brands(tmp_path: Path) -> None:
    shipped = len(load_policy(None).brands)
    policy = load_policy(brand_policy(tmp_path, 25))
    assert len(policy.brands) == shipped + 25
    assert policy.brands["synthetic7"].domains == ("caisse-regionale-7.fr", "crn7.gouv.fr")


def test_scaling_prints_both_tables() -> None:
    lines = run_script("benchmarks/scaling.py", *QUICK)
    assert sum(line.split()[1] == "growth" for line in lines if line.split()) == 3
    header = next(i for i, line in enumerate(lines) if line.startswith("extra brands"))
    brand_rows = [line.split() for line in lines[header + 1 :]]
    assert [row[0] for row in brand_rows] == ["0", "20"]
    assert float(brand_rows[0][3]) == 1.0

"""Hypothesis fuzz of MIME → checks → plan → apply, seeded with the shared robustness
corpus; bounded to a fixed number of examples here (scripts/fuzz_pipeline.py runs long)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from milter.policy.loader import load_policy
from tests.hostile.fuzz import check_one, mutated, seeds

_POLICY = load_policy(None)
_SEEDS = seeds()


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # CI runs the same examples every time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated(_SEEDS))
def test_every_mutated_message_gets_a_verdict_and_a_plan_that_applies(raw: bytes) -> None:
    check_one(raw, _POLICY)

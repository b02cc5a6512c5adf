#!/usr/bin/env python3
"""Long fuzz run of MIME → checks → plan → apply (CI runs a bounded one in
tests/hostile/test_fuzz_pipeline.py). Seeds: the shared robustness corpus and the #17
shapes. A failing input is saved to ``--out`` and printed; exit 1 on failure.

Usage: .venv/bin/python scripts/fuzz_pipeline.py [--examples 5000] [--out /tmp/fuzz]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from milter.policy.loader import load_policy  # noqa: E402
from tests.hostile.fuzz import check_one, mutated, seeds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/tocsin-fuzz"))
    args = parser.parse_args()
    policy = load_policy(None)
    found: list[bytes] = []

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated(seeds()))
    def prop(raw: bytes) -> None:
        try:
            check_one(raw, policy)
        except Exception:
            found.append(raw)
            raise

    try:
        prop()
    except Exception as exc:  # noqa: BLE001 - hypothesis re-raises the shrunk failure
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "failing.eml"
        path.write_bytes(found[-1] if found else b"")
        print(f"FAILED: {type(exc).__name__}: {exc}\ninput saved to {path}")
        return 1
    print(f"{args.examples} examples: every message got a verdict and a plan that applies")
    return 0


if __name__ == "__main__":
    sys.exit(main())

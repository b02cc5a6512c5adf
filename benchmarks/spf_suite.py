"""Run the RFC 7208 SPF test suite through a real local DNS server and print the score.

Usage (from the repository root): ``.venv/bin/python benchmarks/spf_suite.py [-v]``
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def main(verbose: bool) -> int:
    """Run every case; print failures (with -v) and the pass count."""
    from tests.support.dnsserver import DnsTestServer
    from tests.support.spf_suite import SUITE_PATH, load_suite, run_case, verdict

    if not SUITE_PATH.exists():
        print(f"SPF RFC 7208 suite: not found at {SUITE_PATH}")
        return 2
    cases = load_suite()
    passed = 0
    with DnsTestServer() as server:
        for case in cases:
            problem = verdict(case, await run_case(case, server))
            if problem is None:
                passed += 1
            elif verbose:
                print(f"FAIL {case.section} / {case.name}: {problem}")
    print(f"SPF RFC 7208 suite: {passed}/{len(cases)} passed")
    return 0 if passed == len(cases) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main("-v" in sys.argv)))

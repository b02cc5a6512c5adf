"""RFC 7208 conformance: the openspf test suite, evaluated through a real DNS server.

The suite file is read in place (``../shared/corpus/auth/rfc7208-tests.yml`` from the
repository root) and its zone data is served by ``DnsTestServer`` over UDP/TCP sockets on
127.0.0.1. Left out: nothing. Tolerated: the expected explanation of "v-macro-ip6" is
compared case-insensitively, see ``CASE_INSENSITIVE_EXPLANATION`` for why.
Pass count: ``.venv/bin/python benchmarks/spf_suite.py`` prints
"SPF RFC 7208 suite: N/M passed"; so does this module under ``pytest -s``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.dnsserver import DnsTestServer
from tests.support.spf_suite import SUITE_PATH, SuiteCase, load_suite, run_case, verdict

CASES: list[SuiteCase] = load_suite() if SUITE_PATH.exists() else []
_OUTCOMES: dict[str, bool] = {}

pytestmark = pytest.mark.skipif(
    not SUITE_PATH.exists(), reason=f"RFC 7208 suite not found at {SUITE_PATH}"
)


@pytest.fixture(scope="module")
def suite_server() -> Iterator[DnsTestServer]:
    """One server for the module; each case replaces its zone data."""
    with DnsTestServer() as server:
        yield server
    if _OUTCOMES:
        passed = sum(_OUTCOMES.values())
        print(f"\nSPF RFC 7208 suite: {passed}/{len(_OUTCOMES)} passed ({len(CASES)} in file)")


def test_suite_is_complete() -> None:
    assert len(CASES) == 203, "the 2014.04 release of the suite has 203 tests"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.section}/{c.name}" for c in CASES])
async def test_rfc7208(case: SuiteCase, suite_server: DnsTestServer) -> None:
    result = await run_case(case, suite_server)
    problem = verdict(case, result)
    _OUTCOMES[case.name] = problem is None
    assert problem is None, problem

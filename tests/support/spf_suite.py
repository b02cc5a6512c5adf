"""Runner for the openspf RFC 7208 test suite (YAML) against ``DnsTestServer``.

The suite lives outside the repository: ``../shared/corpus/auth/rfc7208-tests.yml``
relative to the repository root. Zone data follows the pyspf test driver's conventions:
"SPF" records are also published as TXT unless the name lists TXT records itself,
"NONE" values publish nothing (but block that copying), and a "TIMEOUT" entry makes
every query type not listed before it time out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from milter.auth.spf import SpfResult, check_host
from milter.dns.stub import DnsResolver
from tests.support.dnsserver import DnsTestServer, Record

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE_PATH = REPO_ROOT.parent / "shared" / "corpus" / "auth" / "rfc7208-tests.yml"
TIMEOUT_TYPES = ("A", "AAAA", "MX", "TXT", "PTR", "CNAME", "SPF")
#: Per-query timeout for the cases whose zone has TIMEOUT entries: each one hit costs this.
SUITE_DNS_TIMEOUT = 1.0  # a loaded machine must not turn a slow answer into a timeout
#: Per-query timeout for the other cases: no query of theirs is meant to time out, so a
#: generous one costs nothing and keeps a starved loopback server from failing them.
ANSWERED_DNS_TIMEOUT = 5.0


#: Cases whose expected explanation is compared case-insensitively, with the reason.
CASE_INSENSITIVE_EXPLANATION = {
    "v-macro-ip6": (
        "the suite expects %{i} nibbles in the case of the input address (pyspf's output);"
        " RFC 7208 §7.3's own example expands %{ir} to lower-case nibbles, which we do, and"
        " DNS names are case-insensitive (RFC 4343)"
    ),
}


@dataclass(frozen=True)
class SuiteCase:
    """One test of the suite with the zone data of its section."""

    section: str
    name: str
    helo: str
    host: str
    mailfrom: str
    results: tuple[str, ...]
    explanation: str | None
    zone: Mapping[str, list[Record]]
    timeouts: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        """Stable test id."""
        return self.name


def convert_zone(
    zonedata: Mapping[str, list[Any]],
) -> tuple[dict[str, list[Record]], list[tuple[str, str]]]:
    """Suite zone data → (DnsTestServer zone, [(name, rdtype) that must time out])."""
    zone: dict[str, list[Record]] = {}
    timeouts: list[tuple[str, str]] = []
    for name, entries in zonedata.items():
        records: list[Record] = []
        spf: list[Any] = []
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        timed_out = False
        for entry in entries:
            if entry == "TIMEOUT":
                timed_out = True
                break
            ((rdtype, value),) = entry.items()
            if rdtype == "SPF":
                spf.append(value)
            if value == "NONE":
                continue
            records.append((rdtype, value))
        if not has_txt and not timed_out:  # copies come last: after a TIMEOUT, unreachable
            records.extend(("TXT", v) for v in spf if v != "NONE")
        if timed_out:
            present = {r[0] for r in records}
            timeouts.extend((name, t) for t in TIMEOUT_TYPES if t not in present)
        zone[name] = records
    return zone, timeouts


def load_suite(path: Path = SUITE_PATH) -> list[SuiteCase]:
    """All test cases of the suite file, in file order."""
    cases = []
    with path.open(encoding="utf-8") as handle:
        for doc in yaml.safe_load_all(handle):
            zone, timeouts = convert_zone(doc.get("zonedata") or {})
            for name, test in doc["tests"].items():
                result = test["result"]
                results = tuple(result) if isinstance(result, list) else (result,)
                cases.append(
                    SuiteCase(
                        section=doc["description"],
                        name=name,
                        helo=str(test["helo"]),
                        host=str(test["host"]),
                        mailfrom=str(test["mailfrom"]),
                        results=results,
                        explanation=test.get("explanation"),
                        zone=zone,
                        timeouts=tuple(timeouts),
                    )
                )
    return cases


async def run_case(case: SuiteCase, server: DnsTestServer) -> SpfResult:
    """Load the case's zone into ``server`` and evaluate it with a fresh resolver."""
    server.load(case.zone)
    for name, rdtype in case.timeouts:
        server.fault(name, "timeout", rdtype)
    timeout = SUITE_DNS_TIMEOUT if case.timeouts else ANSWERED_DNS_TIMEOUT
    resolver = DnsResolver([server.address], timeout=timeout)
    if case.mailfrom:  # as pyspf's check2(): MAIL FROM identity, else postmaster@helo
        sender, domain = case.mailfrom, case.mailfrom.rpartition("@")[2]
    else:
        sender, domain = f"postmaster@{case.helo}", case.helo
    return await check_host(case.host, domain, sender, case.helo, resolver)


def verdict(case: SuiteCase, result: SpfResult) -> str | None:
    """None when ``result`` satisfies the case, else what went wrong."""
    if str(result.status) not in case.results:
        return f"got {result.status} ({result.reason}), expected {'/'.join(case.results)}"
    if case.explanation is not None and str(result.status) == "fail":
        expected = "" if case.explanation == "DEFAULT" else case.explanation
        got = result.explanation
        if case.name in CASE_INSENSITIVE_EXPLANATION:
            got, expected = got.lower(), expected.lower()
        if got != expected:
            return f"explanation {result.explanation!r}, expected {expected!r}"
    return None

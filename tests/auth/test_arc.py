"""ARC: status, instances, sealers, DNS failures and the trusted-sealer override.

Sealed messages come from the shared ARC test suite: dkimpy's ``arc_sign`` needs the
``authres`` package, which the project does not install.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import dkim
import pytest
import yaml

from milter.auth.arc import ArcResult, arc_key_names, arc_override, check_arc
from milter.dns.fake import FakeResolver
from milter.dns.resolver import DnsTimeout
from milter.model.auth import AuthStatus

SUITE = (
    Path(__file__).resolve().parents[2]
    / "../shared/corpus/auth/arc_test_suite/tests/arc-draft-validation-tests.yml"
)
needs_suite = pytest.mark.skipif(not SUITE.exists(), reason=f"ARC test suite not at {SUITE}")


@cache
def suite() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    tests: dict[str, dict[str, Any]] = {}
    records: dict[str, str] = {}
    with SUITE.open(encoding="utf-8") as stream:
        for doc in filter(None, yaml.safe_load_all(stream)):
            records |= doc.get("txt-records") or {}
            tests |= doc.get("tests", {})
    return tests, records


def message(name: str) -> bytes:
    return str(suite()[0][name]["message"]).encode()


def keys() -> FakeResolver:
    return FakeResolver({(n, "TXT"): t for n, t in suite()[1].items()})


@needs_suite
async def test_two_instance_chain_passes_with_sealers() -> None:
    result = await check_arc(message("cv_pass_i2_1"), keys())
    assert result.status is AuthStatus.PASS
    assert result.instances == 2
    assert result.sealers == ("example.org", "example.org")
    entry = result.auth_result()
    assert entry.method == "arc"
    assert entry.result is AuthStatus.PASS
    assert "2 instance(s)" in entry.reason


@needs_suite
async def test_sealer_domains_follow_instances() -> None:
    result = await check_arc(message("ams_as_diff_s_d"), keys())
    assert result.status is AuthStatus.PASS
    assert result.sealers == ("example2.org",)


@needs_suite
async def test_dns_timeout_is_temperror() -> None:
    resolver = FakeResolver({("dummy._domainkey.example.org", "TXT"): DnsTimeout("slow")})
    result = await check_arc(message("cv_pass_i1_1"), resolver)
    assert result.status is AuthStatus.TEMPERROR
    assert "timeout" in result.reason


@needs_suite
async def test_missing_key_fails() -> None:
    result = await check_arc(message("cv_pass_i1_1"), FakeResolver())
    assert result.status is AuthStatus.FAIL


@needs_suite
async def test_key_names_are_collected_once() -> None:
    headers = dkim.ARC(message("cv_pass_i5_1")).headers
    assert arc_key_names(headers) == ("dummy._domainkey.example.org",)


async def test_unsealed_message_is_none_without_dns() -> None:
    resolver = FakeResolver()
    result = await check_arc(b"From: a@ameli.fr\r\nSubject: x\r\n\r\nbody\r\n", resolver)
    assert result.status is AuthStatus.NONE
    assert result.instances == 0
    assert resolver.queries == []


async def test_more_than_fifty_instances_fail_without_dns() -> None:
    seal = b"ARC-Seal: i=51; a=rsa-sha256; cv=pass; d=relay.example; s=s; b=AAAA\r\n"
    resolver = FakeResolver()
    result = await check_arc(seal + b"From: a@ameli.fr\r\n\r\nbody\r\n", resolver)
    assert result.status is AuthStatus.FAIL
    assert resolver.queries == []


PASSING = ArcResult(AuthStatus.PASS, 2, ("lists.example.org", "mx.relay.example"), "success")


@pytest.mark.parametrize(
    ("result", "trusted", "override"),
    [
        (PASSING, {"mx.relay.example"}, True),
        (PASSING, {"MX.Relay.Example."}, True),
        (PASSING, {"lists.example.org"}, False),  # only the last sealer counts
        (PASSING, {"relay.example"}, False),  # no subdomain matching
        (PASSING, set(), False),
        (ArcResult(AuthStatus.FAIL, 2, PASSING.sealers, "x"), {"mx.relay.example"}, False),
        (ArcResult(AuthStatus.NONE, 0, (), "x"), {"mx.relay.example"}, False),
    ],
)
def test_arc_override(result: ArcResult, trusted: set[str], override: bool) -> None:
    assert arc_override(result, trusted) is override

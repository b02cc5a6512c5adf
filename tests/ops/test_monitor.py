"""Monitor mode: the would-be verdict is computed and shown, and the mail goes through unchanged."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from milter.actions.apply import apply_plan
from milter.engine import scan
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition
from milter.policy.loader import load_policy
from tests.conftest import EXAMPLES

LURE = EXAMPLES / "cpf-lure.eml"
PER_RULE = """\
rules:
  - name: brand-impersonation-trial
    description: new strict rule on trial
    before: brand-impersonation
    when: {any: [BRAND_AUTH_FAIL, DISPLAY_NAME_BRAND, FROM_LOOKALIKE]}
    verdict: quarantine
    monitor: true
  - name: lookalike-link
    replace: true
    when: {any: [LINK_LOOKALIKE], min_severity: high}
    verdict: reject
"""


def without_verdict_header(message: bytes) -> bytes:
    lines = message.split(b"\r\n") if b"\r\n" in message else message.split(b"\n")
    sep = b"\r\n" if b"\r\n" in message else b"\n"
    return sep.join(line for line in lines if not line.startswith(b"X-Tocsin-Verdict:"))


def policy_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "local.yaml").write_text(text)
    return tmp_path


def test_global_monitor_delivers_the_lure_unchanged_but_for_the_header(tmp_path: Path) -> None:
    policy = load_policy(policy_dir(tmp_path, "monitor: true\n"))
    raw = LURE.read_bytes()
    result = asyncio.run(scan(raw, Envelope(), policy))
    verdict = result.verdict
    assert verdict.disposition is Disposition.ACCEPT
    assert verdict.would is Disposition.QUARANTINE
    assert verdict.reasons[0].rule == "brand-impersonation"  # the rule that would have acted
    assert verdict.reasons[-1].rule == "monitor"
    assert not result.plan.quarantine
    assert result.plan.new_body is None
    delivered = apply_plan(raw, result.plan)
    assert without_verdict_header(delivered) == raw
    header = next(line for line in delivered.splitlines() if line.startswith(b"X-Tocsin-Verdict"))
    assert b"verdict=accept; would=quarantine;" in header
    assert b"rule=brand-impersonation" in header


def test_without_monitor_the_same_lure_is_quarantined() -> None:
    result = asyncio.run(scan(LURE.read_bytes(), Envelope(), load_policy(None)))
    assert result.verdict.disposition is Disposition.QUARANTINE
    assert result.verdict.would is None
    assert result.plan.quarantine


def test_per_rule_monitor_only_softens_that_rule(tmp_path: Path) -> None:
    policy = load_policy(policy_dir(tmp_path, PER_RULE))
    lure = asyncio.run(scan(LURE.read_bytes(), Envelope(), policy)).verdict
    assert (lure.disposition, lure.would) == (Disposition.ACCEPT, Disposition.QUARANTINE)
    assert lure.reasons[0].rule == "brand-impersonation-trial"
    legit = asyncio.run(scan((EXAMPLES / "legit-notice.eml").read_bytes(), Envelope(), policy))
    assert legit.verdict.would is None  # decided by the score, not by the monitored rule
    assert b"would=" not in apply_plan((EXAMPLES / "legit-notice.eml").read_bytes(), legit.plan)


def test_monitor_must_be_a_boolean(tmp_path: Path) -> None:
    from milter.policy.errors import PolicyInvalid

    with pytest.raises(PolicyInvalid, match="monitor"):
        load_policy(policy_dir(tmp_path, "monitor: sometimes\n"))


def test_scan_shows_the_would_be_verdict(tmp_path: Path) -> None:
    folder = policy_dir(tmp_path, "monitor: true\n")
    command = [sys.executable, "-m", "milter", "scan", "--policy", str(folder), str(LURE)]
    human = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert human.returncode == 0, human.stderr
    assert "ACCEPT (monitor: would QUARANTINE)" in human.stdout
    as_json = subprocess.run(
        [*command[:4], "--json", *command[4:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    obj = json.loads(as_json.stdout)
    assert (obj["verdict"], obj["would"]) == ("accept", "quarantine")

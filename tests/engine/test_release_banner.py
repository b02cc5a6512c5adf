"""Released from quarantine, an impersonation keeps its banner unless it was a false positive."""

from __future__ import annotations

import json

from milter.actions.banner import HTML_START, PLAIN_START
from milter.engine import scan
from milter.engine.release import release_body
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition
from milter.policy.model import Policy
from tests.conftest import EXAMPLES


async def test_release_keeps_the_banner_unless_false_positive(policy: Policy) -> None:
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.disposition is Disposition.QUARANTINE
    stored = json.loads(json.dumps(result.verdict.as_dict()))  # as the quarantine keeps it
    body = release_body(raw, stored, policy, false_positive=False)
    assert body is not None
    assert HTML_START.encode() in body or PLAIN_START.encode() in body
    assert release_body(raw, stored, policy, false_positive=True) is None


async def test_release_of_a_non_impersonation_verdict_changes_nothing(policy: Policy) -> None:
    raw = (EXAMPLES / "legit-notice.eml").read_bytes()
    result = await scan(raw, Envelope(), policy)
    stored = json.loads(json.dumps(result.verdict.as_dict()))
    assert release_body(raw, stored, policy, false_positive=False) is None

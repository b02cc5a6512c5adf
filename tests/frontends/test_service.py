"""The front-end-neutral service: request in, one observed Outcome out, mail never lost."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from milter.frontends.service import Action, MessageRequest, MessageService, Outcome
from milter.mime.spool import RawMessage
from milter.model.envelope import Envelope
from milter.model.limits import LIMIT_EXCEEDED
from milter.model.plan import CANNOT_CHECK, QuarantineMode, SmtpReply
from milter.model.verdict import Disposition
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from milter.quarantine.store import QuarantineStore

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
LURE = (EXAMPLES / "cpf-lure.eml").read_bytes()
HAM = (EXAMPLES / "legit-notice.eml").read_bytes()
ENVELOPE = Envelope(client_ip="192.0.2.7", mail_from="", rcpts=("a@x.test",), queue_id="Q1")


def _service(tmp_path: Path, policy: str = "", store: Any = "default") -> MessageService:
    directory = None
    if policy:
        directory = tmp_path / "policies"
        directory.mkdir()
        (directory / "local.yaml").write_text(policy)
    quarantine = QuarantineStore(tmp_path / "q") if store == "default" else store
    return MessageService(PolicyStore(directory, load_policy(directory)), quarantine=quarantine)


def _request(raw: bytes) -> MessageRequest:
    return MessageRequest(raw, ENVELOPE, len(raw))


async def test_ham_is_delivered_with_the_verdict_header(tmp_path: Path) -> None:
    outcome = await _service(tmp_path).process(_request(HAM), deadline_seconds=30)
    assert outcome.action is Action.DELIVER
    assert outcome.verdict is not None
    assert [e.name for e in outcome.plan.header_edits][-1] == "X-Tocsin-Verdict"
    assert outcome.failure is None
    assert outcome.elapsed_ms > 0


async def test_quarantine_is_stored_before_the_outcome(tmp_path: Path) -> None:
    service = _service(tmp_path)
    outcome = await service.process(_request(LURE), deadline_seconds=30)
    assert outcome.action is Action.QUARANTINE
    assert outcome.plan.quarantine_mode is QuarantineMode.STORE
    assert outcome.quarantine_id is not None
    assert service.quarantine is not None
    assert [r.id for r in QuarantineStore(tmp_path / "q").list()] == [outcome.quarantine_id]


async def test_hold_mode_holds_unless_the_front_end_cannot(tmp_path: Path) -> None:
    service = _service(tmp_path, "actions:\n  quarantine_store: hold\n")
    held = await service.process(_request(LURE), deadline_seconds=30)
    assert held.action is Action.HOLD
    assert held.plan.hold_reason  # the verdict's first reason, for the MTA's queue
    stored = await service.process(_request(LURE), deadline_seconds=30, can_hold=False)
    assert stored.action is Action.QUARANTINE  # no hold queue behind an SMTP filter
    assert stored.quarantine_id is not None


class _BrokenStore:
    def put(self, raw: bytes, envelope: Envelope, verdict: Any) -> str:
        raise OSError("disk full")


async def test_a_failing_store_tempfails_with_the_policys_reply(tmp_path: Path) -> None:
    policy = "actions:\n  replies:\n    tempfail: 451 4.3.0 Réessayez plus tard / try again later\n"
    service = _service(tmp_path, policy, store=_BrokenStore())
    outcome = await service.process(_request(LURE), deadline_seconds=30)
    assert outcome.action is Action.TEMPFAIL
    assert outcome.reply == SmtpReply(451, "4.3.0", "Réessayez plus tard / try again later")
    assert outcome.failure is not None
    assert "disk full" in outcome.failure


async def test_no_store_and_no_hold_queue_tempfails(tmp_path: Path) -> None:
    service = _service(tmp_path, store=None)
    outcome = await service.process(_request(LURE), deadline_seconds=30, can_hold=False)
    assert outcome.action is Action.TEMPFAIL


class _Slow(MessageService):
    async def handle(self, request: MessageRequest, *, can_hold: bool = True) -> Outcome:
        await asyncio.sleep(5)
        raise AssertionError("the deadline should have cut this")


@pytest.mark.parametrize("on_failure", ["tempfail", "accept"])
async def test_the_deadline_follows_on_failure(tmp_path: Path, on_failure: Any) -> None:
    service = _Slow(PolicyStore(None, load_policy(None)))
    outcome = await service.process(_request(HAM), deadline_seconds=0.2, on_failure=on_failure)
    assert outcome.failure is not None
    assert "0.2" in outcome.failure
    if on_failure == "tempfail":
        assert (outcome.action, outcome.reply) == (Action.TEMPFAIL, CANNOT_CHECK)
    else:
        assert outcome.action is Action.DELIVER
        assert outcome.plan.header_edits == ()


async def test_deliver_runs_for_deliveries_only_and_its_failure_is_observed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = _service(tmp_path)
    seen: list[Action] = []

    async def relay(outcome: Outcome) -> Outcome:
        seen.append(outcome.action)
        return outcome.failed("next hop down: connection refused")

    caplog.set_level(logging.INFO, logger="tocsin.message")
    ham = await service.process(_request(HAM), deadline_seconds=30, deliver=relay)
    lure = await service.process(_request(LURE), deadline_seconds=30, deliver=relay)
    assert seen == [Action.DELIVER]
    assert ham.action is Action.TEMPFAIL
    assert lure.action is Action.QUARANTINE
    lines = [r.getMessage() for r in caplog.records if r.name == "tocsin.message"]
    assert len(lines) == 2  # one line per message, whatever happened
    assert lines[0].startswith("Q1: action=tempfail verdict=accept")
    assert 'failure="next hop down: connection refused"' in lines[0]
    assert f"quarantine={lure.quarantine_id}" in lines[1]
    assert service.messages == 2


def _cut(raw: bytes, kept: int) -> MessageRequest:
    """``raw`` as a front-end that kept only its first ``kept`` bytes hands it over."""
    message = RawMessage(raw[:kept], received=len(raw))
    return MessageRequest(message, ENVELOPE, len(raw))


async def test_oversize_lure_is_scanned_on_what_fits_and_held_whole(tmp_path: Path) -> None:
    """#17: past max_message_bytes the first bytes are scanned (LIMIT_EXCEEDED size); a
    quarantined message that was not kept whole stays with the MTA (hold), never stored cut."""
    service = _service(tmp_path, "limits:\n  max_message_bytes: 65536\n")
    padded = LURE + b"x" * 100_000
    outcome = await service.process(_cut(padded, 65536), deadline_seconds=30)
    assert outcome.verdict is not None
    assert outcome.verdict.disposition is Disposition.QUARANTINE
    size_hits = [f for f in outcome.verdict.findings if f.evidence.get("limit") == "size"]
    assert [f.code for f in size_hits] == [LIMIT_EXCEEDED]
    assert outcome.action is Action.HOLD
    assert QuarantineStore(tmp_path / "q").list() == []
    refused = await service.process(_cut(padded, 65536), deadline_seconds=30, can_hold=False)
    assert refused.action is Action.TEMPFAIL


@pytest.mark.parametrize(
    ("setting", "action"), [("tempfail", Action.TEMPFAIL), ("accept", Action.DELIVER)]
)
async def test_oversize_not_scanned_when_the_policy_says_so(
    tmp_path: Path, setting: str, action: Action
) -> None:
    service = _service(tmp_path, f"limits:\n  max_message_bytes: 65536\n  oversize: {setting}\n")
    outcome = await service.process(_cut(LURE + b"x" * 100_000, 65536), deadline_seconds=30)
    assert outcome.action is action
    assert outcome.verdict is not None
    assert "not scanned" in outcome.verdict.reasons[0].text


async def test_a_message_the_front_end_could_not_keep_is_tempfailed(tmp_path: Path) -> None:
    request = replace(_request(HAM), unreadable="spool: No space left on device")
    outcome = await _service(tmp_path).process(request, deadline_seconds=30)
    assert outcome.action is Action.TEMPFAIL
    assert outcome.failure == "spool: No space left on device"


def test_with_elapsed_carries_every_field_over() -> None:
    from dataclasses import fields

    from milter.frontends.service import with_elapsed

    values = {f.name: object() for f in fields(Outcome)}
    outcome = Outcome(**values)  # type: ignore[arg-type]
    assert with_elapsed(outcome, 12.5) == replace(outcome, elapsed_ms=12.5)
    assert with_elapsed(outcome, 12.5).elapsed_ms == 12.5

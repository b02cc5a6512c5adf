"""The front-end-neutral seam: one message + envelope in, one `Outcome` out.

Both front-ends (milter, SMTP filter) hand a `MessageRequest` to `MessageService.process`
and carry out the `Outcome` it returns. The service takes the policy snapshot, runs the
engine (or the oversize rule) under a deadline, stores quarantined mail durably *before*
the MTA hears anything, lets the front-end deliver (the SMTP filter relays to its next
hop there), and turns any internal failure into a tempfail so a message is never lost.

Every outcome, whatever the front-end, passes through `observe` exactly once: the one
place for the log line (and metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal, Protocol

from milter.dns.resolver import Resolver
from milter.engine import scan
from milter.engine.oversize import RULE as OVERSIZE_RULE
from milter.engine.oversize import oversize_plan, oversize_verdict
from milter.mime.spool import RawMessage, SpoolConfig
from milter.model.envelope import Envelope
from milter.model.limits import LIMIT_EXCEEDED
from milter.model.plan import CANNOT_CHECK, ActionPlan, QuarantineMode, SmtpReply
from milter.model.verdict import Disposition, Verdict
from milter.ops.logs import log_fields
from milter.ops.metrics import record_message, record_quarantine_write
from milter.policy.store import PolicyStore

log = logging.getLogger("tocsin.message")

OnFailure = Literal["tempfail", "accept"]


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """One complete message for the engine, with its envelope.

    ``data`` is the message as the front-end kept it: bytes, or a `RawMessage` (maybe
    spooled to disk, maybe only its first bytes: ``size`` is what the MTA sent). The
    front-end closes a `RawMessage` once the MTA has its answer. ``header_names`` are the
    names of the headers received, for the oversize plan. ``unreadable`` says why the
    front-end could not keep the message (a spool write failed): it is then tempfailed.
    """

    data: bytes | RawMessage
    envelope: Envelope
    size: int
    header_names: tuple[str, ...] = ()
    unreadable: str | None = None

    @property
    def message(self) -> RawMessage:
        """The message as a `RawMessage` (bytes are wrapped, not copied)."""
        data = self.data
        return data if isinstance(data, RawMessage) else RawMessage.from_bytes(data)

    @property
    def raw(self) -> bytes:
        """The kept bytes in memory (read from the spool, a copy, when spooled)."""
        data = self.data
        return data if isinstance(data, bytes) else data.to_bytes()


class Action(StrEnum):
    """What the front-end does with the message."""

    DELIVER = "deliver"  # apply the plan's edits and let the message go on
    QUARANTINE = "quarantine"  # stored in Tocsin's quarantine: accept and drop
    HOLD = "hold"  # let the MTA hold it (Postfix hold queue), with the plan's edits
    REJECT = "reject"  # 5xx with `Outcome.reply`
    TEMPFAIL = "tempfail"  # 4xx with `Outcome.reply`: the MTA keeps the message


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision for one message, as the front-end must carry it out.

    Attributes:
        action: what to do.
        plan: the engine's plan (header edits and body for DELIVER / HOLD).
        request: the message and envelope it is about.
        verdict: the engine's verdict; None when the engine failed.
        reply: the SMTP reply for REJECT / TEMPFAIL (or the next hop's, when mirrored).
        quarantine_id: the id in Tocsin's quarantine for QUARANTINE.
        failure: why Tocsin could not finish the message its normal way, if it could not.
        elapsed_ms: time from the start of `process` to the final answer.
        next_hop: the next hop's final reply, for a front-end that relays.
    """

    action: Action
    plan: ActionPlan
    request: MessageRequest
    verdict: Verdict | None = None
    reply: SmtpReply | None = None
    quarantine_id: str | None = None
    failure: str | None = None
    elapsed_ms: float = 0.0
    next_hop: str | None = None

    def failed(self, why: str, reply: SmtpReply | None = None) -> Outcome:
        """This outcome turned into a tempfail: the MTA keeps the message."""
        return replace(
            self,
            action=Action.TEMPFAIL,
            reply=reply or self.plan.failure_reply,
            failure=why,
            quarantine_id=None,
        )


Deliver = Callable[[Outcome], Awaitable[Outcome]]


LARGE_MESSAGE_BYTES = 4 * 1024 * 1024
"""Messages from this size, and every spooled one, count as large: at most
``large_scans`` of them are scanned at once per worker (their spool pages, text parts and
canonical bodies are what a scan holds), the others wait their turn."""


class QuarantineSink(Protocol):
    """The part of the quarantine store the service needs."""

    def put(self, raw: bytes, envelope: Envelope, verdict: Any) -> str:
        """Store durably and return the id; raise on any failure."""
        ...


class MessageService:
    """Runs the engine on one message and decides how the front-end finishes it."""

    def __init__(
        self,
        policies: PolicyStore,
        *,
        resolver: Resolver | None = None,
        quarantine: QuarantineSink | None = None,
        spool: SpoolConfig | None = None,
        large_scans: int = 1,
    ) -> None:
        self.policies = policies
        self.resolver = resolver
        self.quarantine = quarantine
        self.spool = spool or SpoolConfig()
        self.messages = 0
        self._large_scan = asyncio.Semaphore(large_scans)
        self.spool.sweep()  # names a crashed worker left (spool files are unlinked at once)

    async def warm_up(self) -> None:
        """Scan a tiny message once so indexes and suffix lists load before real mail."""
        probe = b"From: Tocsin <warm-up@tocsin.invalid>\r\nSubject: warm-up\r\n\r\nhttps://example.org/\r\n"
        await scan(probe, Envelope(), self.policies.current, None)

    async def process(
        self,
        request: MessageRequest,
        *,
        deadline_seconds: float,
        on_failure: OnFailure = "tempfail",
        can_hold: bool = True,
        deliver: Deliver | None = None,
    ) -> Outcome:
        """The outcome for ``request``; never raises for a message (only on cancellation).

        ``deliver`` (the SMTP filter's relay) runs inside the deadline after the decision
        for DELIVER outcomes and returns the final outcome. ``can_hold`` is False for a
        front-end with no MTA hold queue behind it: held mail is stored instead.
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(deadline_seconds):
                outcome = await self.handle(request, can_hold=can_hold)
                if deliver is not None and outcome.action is Action.DELIVER:
                    outcome = await deliver(outcome)
        except TimeoutError:
            outcome = failure_outcome(
                request, f"no answer within {deadline_seconds:g}s", on_failure
            )
        except Exception as exc:
            log.exception("%s: internal error", _qid(request.envelope))
            outcome = failure_outcome(request, f"internal error: {type(exc).__name__}", on_failure)
        outcome = with_elapsed(outcome, (time.perf_counter() - started) * 1000)
        self.messages += 1
        observe(outcome)
        return outcome

    async def handle(self, request: MessageRequest, *, can_hold: bool = True) -> Outcome:
        """The decision for ``request``. Exceptions propagate to `process`'s failure rule."""
        policy = self.policies.current
        envelope = request.envelope
        message = request.message.counted(request.size)
        limits = policy.document.limits
        if request.unreadable is not None:
            return failure_outcome(request, request.unreadable, "tempfail")
        if request.size > limits.max_message_bytes and limits.oversize != "scan":
            why = f"message of {request.size} bytes, over {limits.max_message_bytes}"
            verdict = oversize_verdict(policy, why)
            names = request.header_names or _names(message)
            plan = oversize_plan(verdict, policy, envelope.rcpts, names)
        elif message.spooled or message.size >= LARGE_MESSAGE_BYTES:
            async with self._large_scan:
                result = await scan(message, envelope, policy, self.resolver)
            verdict, plan = result.verdict, result.plan
        else:
            result = await scan(message, envelope, policy, self.resolver)
            verdict, plan = result.verdict, result.plan
        if plan.smtp_reply is not None:
            action = Action.REJECT if plan.disposition is Disposition.REJECT else Action.TEMPFAIL
            return Outcome(action, plan, request, verdict, reply=plan.smtp_reply)
        if plan.quarantine_mode is None:
            return Outcome(Action.DELIVER, plan, request, verdict)
        if plan.quarantine_mode is QuarantineMode.HOLD and can_hold:
            return Outcome(Action.HOLD, plan, request, verdict)
        held = Outcome(Action.HOLD, plan, request, verdict)
        if message.truncated:  # only its first bytes are here: the MTA keeps the whole
            if can_hold:
                return held
            return held.failed("quarantine: message not kept whole and no MTA hold queue")
        if self.quarantine is None:
            if can_hold:
                return held
            return held.failed("quarantine: no store and no MTA hold queue")
        try:
            qid = await asyncio.to_thread(
                self.quarantine.put, request.raw, envelope, verdict.as_dict()
            )
        except Exception as exc:  # noqa: BLE001 - any storage failure means: keep the mail
            record_quarantine_write(ok=False)
            return held.failed(f"quarantine store failed: {exc}")
        record_quarantine_write(ok=True)
        return Outcome(Action.QUARANTINE, plan, request, verdict, quarantine_id=qid)


def with_elapsed(outcome: Outcome, elapsed_ms: float) -> Outcome:
    """``replace(outcome, elapsed_ms=elapsed_ms)`` without `dataclasses.replace`'s loop
    over the fields (a test checks that every field is carried over)."""
    return Outcome(
        outcome.action,
        outcome.plan,
        outcome.request,
        outcome.verdict,
        outcome.reply,
        outcome.quarantine_id,
        outcome.failure,
        elapsed_ms,
        outcome.next_hop,
    )


def failure_outcome(request: MessageRequest, why: str, on_failure: OnFailure) -> Outcome:
    """Tocsin failed on ``request``: tempfail it, or pass it unchanged if so configured."""
    if on_failure == "accept":
        return Outcome(Action.DELIVER, ActionPlan(Disposition.ACCEPT), request, failure=why)
    plan = ActionPlan(Disposition.TEMPFAIL, smtp_reply=CANNOT_CHECK)
    return Outcome(Action.TEMPFAIL, plan, request, reply=CANNOT_CHECK, failure=why)


def _names(message: RawMessage) -> tuple[str, ...]:
    from milter.mime.headers import parse_header_block

    return tuple(name for name, _ in parse_header_block(message.header_block))


def _qid(envelope: Envelope) -> str:
    return envelope.queue_id or "NOQUEUE"


def observe(outcome: Outcome) -> None:
    """Every outcome of every front-end passes here once: one log line, the metrics."""
    verdict = outcome.verdict
    level = logging.WARNING if outcome.failure else logging.INFO
    if log.isEnabledFor(level):
        fields = outcome_fields(outcome)
        log_fields(log, level, ("queue_id", _qid(outcome.request.envelope)), fields)
        codes = fields["codes"]
    else:
        codes = sorted({f.code for f in verdict.findings}) if verdict else []
    record_message(
        action=str(outcome.action),
        verdict=str(verdict.disposition) if verdict else None,
        would=str(verdict.would) if verdict and verdict.would else None,
        brand=verdict.brand if verdict else None,
        codes=codes,
        seconds=outcome.elapsed_ms / 1000,
        failed=outcome.failure is not None,
        limits=limits_hit(outcome),
    )


def limits_hit(outcome: Outcome) -> list[str]:
    """The limits the message went past (``LIMIT_EXCEEDED`` findings; ``size`` also when
    the policy's ``oversize`` refused or passed it unscanned)."""
    verdict = outcome.verdict
    found = [
        str(f.evidence.get("limit"))
        for f in (verdict.findings if verdict else ())
        if f.code == LIMIT_EXCEEDED
    ]
    unscanned = verdict is not None and any(r.rule == OVERSIZE_RULE for r in verdict.reasons)
    return [*found, "size"] if unscanned else found


def outcome_fields(outcome: Outcome) -> dict[str, Any]:
    """The per-message log fields, in order (key=value text or JSON: operations-logs.md)."""
    request = outcome.request
    envelope = request.envelope
    verdict = outcome.verdict
    fields: dict[str, Any] = {
        "action": str(outcome.action),
        "verdict": str(verdict.disposition) if verdict else None,
    }
    if verdict is not None and verdict.would is not None:
        fields["would"] = str(verdict.would)
    fields |= {
        "brand": verdict.brand if verdict else None,
        "score": verdict.score if verdict else None,
        "rule": verdict.reasons[0].rule if verdict and verdict.reasons else None,
        "codes": sorted({f.code for f in verdict.findings}) if verdict else [],
        "client": envelope.client_ip,
        "helo": envelope.helo,
        "from": f"<{envelope.mail_from or ''}>",
        "rcpts": list(envelope.rcpts),
        "size": request.size,
        "ms": round(outcome.elapsed_ms, 1),
    }
    if outcome.quarantine_id:
        fields["quarantine"] = outcome.quarantine_id
    elif outcome.action is Action.HOLD:
        fields["quarantine"] = "hold"
    optional = (("reply", outcome.reply), ("next_hop", outcome.next_hop))
    fields |= {key: str(value) for key, value in optional if value is not None}
    if outcome.failure is not None:
        fields["failure"] = outcome.failure
    return fields

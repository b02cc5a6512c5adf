"""From a complete message to the replies: engine, quarantine, and the failure rule.

Shared by the front-ends' shape of work: take the policy snapshot, run the engine (or
the oversize rule), store quarantined mail durably *before* the MTA hears anything,
and turn any internal failure into the configured failure reply (tempfail by default)
so a message is never lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from milter.dns.resolver import Resolver
from milter.engine import scan
from milter.engine.oversize import oversize_plan, oversize_verdict
from milter.frontends.replies import Delivery
from milter.frontends.session import MessageRequest
from milter.model.envelope import Envelope
from milter.model.plan import ActionPlan, SmtpReply
from milter.model.verdict import Disposition, Verdict
from milter.policy.store import PolicyStore

log = logging.getLogger("tocsin.message")


class QuarantineSink(Protocol):
    """The part of the quarantine store the front-end needs."""

    def put(self, raw: bytes, envelope: Envelope, verdict: Any) -> str:
        """Store durably and return the id; raise on any failure."""
        ...


@dataclass(frozen=True, slots=True)
class Handled:
    """What to tell the MTA about one message."""

    plan: ActionPlan
    delivery: Delivery
    verdict: Verdict | None
    quarantine_id: str | None = None


class MessageHandler:
    """Runs the engine on one message and decides how the front-end finishes it."""

    def __init__(
        self,
        policies: PolicyStore,
        *,
        resolver: Resolver | None = None,
        quarantine: QuarantineSink | None = None,
    ) -> None:
        self.policies = policies
        self.resolver = resolver
        self.quarantine = quarantine

    async def warm_up(self) -> None:
        """Scan a tiny message once so indexes and suffix lists load before real mail."""
        probe = b"From: Tocsin <warm-up@tocsin.invalid>\r\nSubject: warm-up\r\n\r\nhttps://example.org/\r\n"
        await scan(probe, Envelope(), self.policies.current, None)

    async def handle(self, request: MessageRequest) -> Handled:
        """The outcome for ``request``. Exceptions propagate to the caller's failure rule."""
        policy = self.policies.current
        envelope = request.envelope
        if request.oversize is not None:
            verdict = oversize_verdict(policy, request.oversize)
            plan = oversize_plan(verdict, policy, envelope.rcpts, request.header_names)
            return Handled(plan, Delivery(), verdict)
        result = await scan(request.raw, envelope, policy, self.resolver)
        verdict, plan = result.verdict, result.plan
        if not plan.quarantine:
            return Handled(plan, Delivery(), verdict)
        reason = verdict.reasons[0].text if verdict.reasons else "held by Tocsin"
        mode = policy.effective(envelope.rcpts).actions.quarantine_store
        if mode == "hold" or self.quarantine is None:
            return Handled(plan, Delivery(hold_reason=reason), verdict)
        try:
            qid = await asyncio.to_thread(
                self.quarantine.put, request.raw, envelope, verdict.as_dict()
            )
        except Exception as exc:  # noqa: BLE001 - any storage failure means: keep the mail
            log.error("%s: quarantine store failed, tempfail: %s", _qid(envelope), exc)
            tempfail = SmtpReply(451, "4.3.0", "Message could not be quarantined, try again later")
            return Handled(
                ActionPlan(Disposition.TEMPFAIL, smtp_reply=tempfail), Delivery(), verdict
            )
        return Handled(plan, Delivery(discard=True), verdict, qid)


def _qid(envelope: Envelope) -> str:
    return envelope.queue_id or "NOQUEUE"


def log_outcome(request: MessageRequest, handled: Handled, elapsed_ms: float) -> None:
    """One line per message, key=value, for admins and log parsers."""
    envelope = request.envelope
    verdict = handled.verdict
    codes = sorted({f.code for f in verdict.findings}) if verdict else []
    fields = [
        f"verdict={handled.plan.disposition}",
        f"brand={(verdict.brand if verdict else None) or '-'}",
        f"score={verdict.score:g}" if verdict else "score=-",
        f"rule={verdict.reasons[0].rule if verdict and verdict.reasons else '-'}",
        f"codes={','.join(codes) or '-'}",
        f"client={envelope.client_ip or '-'}",
        f"from=<{envelope.mail_from or ''}>",
        f"rcpts={len(envelope.rcpts)}",
        f"size={request.size}",
        f"ms={elapsed_ms:.1f}",
    ]
    if handled.quarantine_id:
        fields.append(f"quarantine={handled.quarantine_id}")
    elif handled.delivery.hold_reason:
        fields.append("quarantine=hold")
    log.info("%s: %s", _qid(envelope), " ".join(fields))

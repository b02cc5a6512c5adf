"""ActionPlan: the edits to make, expressed in the milter's own primitives.

Both front-ends apply the same plan: the milter turns each edit into an SMFIR_* reply,
the SMTP proxy applies the same edits to the bytes. Header indexes follow the milter
convention: 1-based among the headers of that name, counted on the message as received.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from milter.model.verdict import Disposition


class QuarantineMode(StrEnum):
    """Where a quarantined message goes (policy ``actions.quarantine_store``)."""

    STORE = "store"  # Tocsin's own durable store, then the message is dropped from the MTA
    HOLD = "hold"  # the MTA keeps it (Postfix hold queue); no copy in Tocsin


class HeaderOp(StrEnum):
    """Header edit operations a milter can perform."""

    ADD = "add"  # SMFIR_ADDHEADER: append at the end of the header block
    INSERT = "insert"  # SMFIR_INSHEADER: insert at a position in the whole header block (0 = top)
    CHANGE = "change"  # SMFIR_CHGHEADER: replace the index-th header of this name
    DELETE = "delete"  # SMFIR_CHGHEADER with an empty value


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """One header edit. ``index`` is the position for INSERT, or the 1-based occurrence of
    ``name`` for CHANGE and DELETE; unused for ADD."""

    op: HeaderOp
    name: str
    value: str = ""
    index: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"op": str(self.op), "name": self.name, "value": self.value, "index": self.index}


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """An SMTP reply the front-end gives the client (reject or tempfail)."""

    code: int
    enhanced: str
    text: str

    def __post_init__(self) -> None:
        if not (400 <= self.code <= 599):
            raise ValueError(f"SMTP reply code {self.code} is not a 4xx or 5xx code")
        if str(self.code)[0] != self.enhanced[:1]:
            raise ValueError(f"enhanced code {self.enhanced} does not match {self.code}")
        if any(c in self.text for c in "\r\n\0"):
            raise ValueError("SMTP reply text must be one line")

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


# What a front-end answers when Tocsin itself fails on a message and the plan could not
# say (no plan yet: engine error or deadline). Tempfail: the MTA keeps the message.
CANNOT_CHECK = SmtpReply(451, "4.7.1", "Message could not be checked, try again later")


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What the front-end must do with the message.

    Attributes:
        disposition: the verdict's disposition.
        header_edits: header edits in the order to apply them.
        new_body: replacement body (bytes after the header block), or None to keep it.
        smtp_reply: reply for reject/tempfail, None otherwise.
        quarantine_mode: STORE (durably stored before the MTA is told anything, then
            dropped) or HOLD (the MTA holds it); None when the message is not quarantined.
        hold_reason: the one-line reason an MTA shows for a held message.
        failure_reply: what to answer if carrying out this plan fails (quarantine store
            down, next hop unreachable): a tempfail, so the MTA keeps the message.
    """

    disposition: Disposition
    header_edits: tuple[HeaderEdit, ...] = ()
    new_body: bytes | None = None
    smtp_reply: SmtpReply | None = None
    quarantine_mode: QuarantineMode | None = None
    hold_reason: str = ""
    failure_reply: SmtpReply = CANNOT_CHECK

    def __post_init__(self) -> None:
        if self.failure_reply.code >= 500:
            raise ValueError("a failure reply must be a tempfail (4xx): mail is never lost")
        if self.disposition in (Disposition.REJECT, Disposition.TEMPFAIL):
            if self.smtp_reply is None:
                raise ValueError(f"a {self.disposition} plan needs its SMTP reply")
            if str(self.smtp_reply.code)[0] != (
                "5" if self.disposition is Disposition.REJECT else "4"
            ):
                raise ValueError(f"{self.smtp_reply} does not fit {self.disposition}")

    @property
    def quarantine(self) -> bool:
        """True when the message is quarantined (stored or held)."""
        return self.quarantine_mode is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (the body is summarised, not dumped)."""
        return {
            "disposition": str(self.disposition),
            "headers": [e.as_dict() for e in self.header_edits],
            "body_replaced": self.new_body is not None,
            "smtp_reply": str(self.smtp_reply) if self.smtp_reply else None,
            "quarantine": str(self.quarantine_mode) if self.quarantine_mode else None,
            "failure_reply": str(self.failure_reply),
        }

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


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What the front-end must do with the message.

    Attributes:
        disposition: the verdict's disposition.
        header_edits: header edits in the order to apply them.
        new_body: replacement body (bytes after the header block), or None to keep it.
        smtp_reply: reply for reject/tempfail, None otherwise.
        quarantine: True when the message must be stored in quarantine before the MTA
            is told anything.
    """

    disposition: Disposition
    header_edits: tuple[HeaderEdit, ...] = ()
    new_body: bytes | None = None
    smtp_reply: SmtpReply | None = None
    quarantine: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (the body is summarised, not dumped)."""
        return {
            "disposition": str(self.disposition),
            "headers": [e.as_dict() for e in self.header_edits],
            "body_replaced": self.new_body is not None,
            "smtp_reply": str(self.smtp_reply) if self.smtp_reply else None,
            "quarantine": self.quarantine,
        }

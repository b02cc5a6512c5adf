"""A quarantine record (metadata of one held message) and its JSON sidecar format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from milter.model.envelope import Envelope
from milter.quarantine.errors import QuarantineError

FORMAT = 1
Status = Literal["held", "released"]
STATUSES: tuple[Status, ...] = ("held", "released")


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """What the store knows about one held message.

    Attributes:
        id: the quarantine id (see ``milter.quarantine.ids``).
        received_at: when the message was stored (aware, UTC).
        envelope: the SMTP envelope as the MTA gave it; release re-uses it verbatim.
        verdict: the JSON of ``Verdict.as_dict()`` that sent the message here.
        size: length of the stored message in bytes.
        sha256: hex digest of the stored message (checked on every read).
        status: ``held`` or ``released``.
        subject: decoded Subject header (untrusted text: sanitise before display).
        header_from: the From header as written (untrusted text).
        released_at: when the relay accepted the released message, if it did.
        attempts: release attempts, oldest first: ``at``, ``relay``, ``ok``, ``reply``.
    """

    id: str
    received_at: datetime
    envelope: Envelope
    verdict: dict[str, Any]
    size: int
    sha256: str
    status: Status = "held"
    subject: str = ""
    header_from: str = ""
    released_at: datetime | None = None
    attempts: tuple[dict[str, Any], ...] = field(default=())

    @property
    def brand(self) -> str | None:
        """The protected brand the verdict names, if any."""
        brand = self.verdict.get("brand")
        return brand if isinstance(brand, str) else None

    @property
    def disposition(self) -> str:
        """The verdict's disposition (``quarantine`` normally)."""
        return str(self.verdict.get("verdict", ""))

    def with_attempt(
        self, attempt: Mapping[str, Any], released_at: datetime | None
    ) -> QuarantineRecord:
        """A copy with ``attempt`` appended and, when ``released_at`` is set, released."""
        return replace(
            self,
            attempts=(*self.attempts, dict(attempt)),
            status="released" if released_at is not None else self.status,
            released_at=released_at or self.released_at,
        )


def envelope_to_json(envelope: Envelope) -> dict[str, Any]:
    """JSON-ready view of an envelope (every field, so release can replay it)."""
    return {
        "client_ip": envelope.client_ip,
        "client_name": envelope.client_name,
        "helo": envelope.helo,
        "mail_from": envelope.mail_from,
        "rcpts": list(envelope.rcpts),
        "queue_id": envelope.queue_id,
        "macros": dict(envelope.macros),
    }


def envelope_from_json(data: Mapping[str, Any]) -> Envelope:
    """Inverse of ``envelope_to_json``."""
    return Envelope(
        client_ip=data.get("client_ip"),
        client_name=data.get("client_name"),
        helo=data.get("helo"),
        mail_from=data.get("mail_from"),
        rcpts=tuple(str(r) for r in data.get("rcpts", ())),
        queue_id=data.get("queue_id"),
        macros={str(k): str(v) for k, v in dict(data.get("macros") or {}).items()},
    )


def record_as_dict(record: QuarantineRecord) -> dict[str, Any]:
    """JSON-ready view of ``record`` (the sidecar's content; also ``--json`` output)."""
    return {
        "format": FORMAT,
        "id": record.id,
        "received_at": record.received_at.isoformat(),
        "status": record.status,
        "size": record.size,
        "sha256": record.sha256,
        "subject": record.subject,
        "from": record.header_from,
        "envelope": envelope_to_json(record.envelope),
        "verdict": record.verdict,
        "released_at": record.released_at.isoformat() if record.released_at else None,
        "attempts": list(record.attempts),
    }


def record_to_json(record: QuarantineRecord) -> bytes:
    """Serialise ``record`` to the sidecar bytes (UTF-8 JSON, one object)."""
    data = record_as_dict(record)
    try:
        # one line: the C encoder (indent= falls back to the pure-Python one, 5x the CPU
        # of a quarantined message's record); `jq .` or `tocsin quarantine show` to read
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise QuarantineError(
            f"record {record.id}: metadata is not JSON-serialisable: {exc}"
        ) from None
    return text.encode("utf-8", "surrogatepass") + b"\n"


def record_from_json(raw: bytes, where: str) -> QuarantineRecord:
    """Parse sidecar bytes; any problem raises QuarantineError naming ``where``."""
    try:
        data = json.loads(raw.decode("utf-8", "surrogatepass"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(
                f"unknown format {data.get('format') if isinstance(data, dict) else data!r}"
            )
        status = data["status"]
        if status not in STATUSES:
            raise ValueError(f"bad status {status!r}")
        released = data.get("released_at")
        return QuarantineRecord(
            id=str(data["id"]),
            received_at=datetime.fromisoformat(data["received_at"]),
            envelope=envelope_from_json(data["envelope"]),
            verdict=dict(data["verdict"]),
            size=int(data["size"]),
            sha256=str(data["sha256"]),
            status=status,
            subject=str(data.get("subject", "")),
            header_from=str(data.get("from", "")),
            released_at=datetime.fromisoformat(released) if released else None,
            attempts=tuple(dict(a) for a in data.get("attempts", ())),
        )
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise QuarantineError(f"corrupt quarantine record {where}: {exc}") from None

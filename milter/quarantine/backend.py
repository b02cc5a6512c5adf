"""The storage interface every quarantine backend implements, and the values it speaks.

Two implementations exist or are planned: ``QuarantineStore`` (``store.py``: durable
files in one directory plus a SQLite index beside them, the embedded default) and a
PostgreSQL store shared by several gateways. The front-end (``put``), the
``tocsin quarantine`` commands, ``release()`` and the review page use only what is
declared here, so a backend is chosen by configuration and nothing else changes.

Contract shared by every method:

- **Synchronous and thread-safe.** Async callers run methods in a worker thread
  (``asyncio.to_thread``); several processes (milter workers, the CLI, the review page,
  other gateways) use one store at once.
- **Errors** are ``QuarantineError`` or a subclass (``milter.quarantine.errors``):
  ``InvalidQuarantineId`` for a malformed id (raised before any storage access),
  ``QuarantineNotFound`` for an unknown id, ``QuarantineBusy`` when another process
  holds the item (a release in progress), ``QuarantineConflict`` when the item is not
  in a state that allows the action. Any other storage failure is a plain
  ``QuarantineError`` whose message names the store and the cause. Nothing else escapes.
- **Ids** come from ``milter.quarantine.ids.new_id``: time-ordered text, so
  ``ORDER BY id DESC`` is newest first and keyset paging is ``id < before``.
- **Untrusted text**: subject, From display name and address, envelope fields are what
  a sender wrote. Backends store them verbatim; displays sanitise.

States (``State``) and the only allowed transitions::

    put ─▶ held ──claim_release──▶ releasing ──finish_release(accepted)──▶ released
             ▲                         │
             └──finish_release(not accepted: 4xx/5xx/network)─┘
    held | released ──delete / purge──▶ (gone; the audit trail keeps the action)

Optional, used when present: ``brands() -> list[str]`` (the brands present, for the
review page's filter menu).

``releasing`` is won by exactly one caller (a conditional update / row lock: the loser
gets ``QuarantineBusy``). A process that dies while ``releasing`` leaves the item in
that state: the relay may or may not have taken the message, so only
``claim_release(..., force=True)`` takes it again (an admin's explicit choice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from milter.model.envelope import Envelope
from milter.quarantine.record import QuarantineRecord

SCHEMA_VERSION = 1
"""Version of the index schema this code writes (SQLite ``user_version``; the
PostgreSQL store keeps its own migration table). A store newer than this is refused."""

State = Literal["held", "releasing", "released"]
STATES: tuple[State, ...] = ("held", "releasing", "released")
Action = Literal["put", "release", "delete", "purge", "login", "logout", "allow", "reindex"]
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class HeldItem:
    """One row of a listing: everything the list shows, without opening the message.

    Attributes:
        id: quarantine id.
        received_at: when it was stored (aware, UTC).
        state: ``held``, ``releasing`` or ``released``.
        mail_from: envelope sender (``""`` for the null sender).
        rcpts: envelope recipients.
        from_name: display name of the From header (decoded, untrusted).
        from_addr: address of the From header (untrusted).
        subject: decoded Subject (untrusted).
        brand: the protected brand the verdict names, or None.
        verdict: the disposition that held it (``quarantine`` normally).
        score: the verdict's score.
        rule: the deciding rule's name ("" if none).
        codes: finding codes of the verdict, in order, without repeats.
        size: message size in bytes.
        released_at: when the relay accepted it, if released.
    """

    id: str
    received_at: datetime
    state: State
    mail_from: str
    rcpts: tuple[str, ...]
    from_name: str
    from_addr: str
    subject: str
    brand: str | None
    verdict: str
    score: float
    rule: str
    codes: tuple[str, ...]
    size: int
    released_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (``tocsin quarantine list --json``)."""
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "state": self.state,
            "mail_from": self.mail_from,
            "rcpts": list(self.rcpts),
            "from_name": self.from_name,
            "from_addr": self.from_addr,
            "subject": self.subject,
            "brand": self.brand,
            "verdict": self.verdict,
            "score": self.score,
            "rule": self.rule,
            "codes": list(self.codes),
            "size": self.size,
            "released_at": self.released_at.isoformat() if self.released_at else None,
        }


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters and paging for ``search``. Every filter is optional and they combine (AND).

    Attributes:
        state: only items in this state.
        brand: brand id, case-insensitive exact match.
        verdict: disposition, exact match (``quarantine``, ``reject``...).
        recipient: an envelope recipient (case-insensitive), or ``@domain`` for any
            recipient in that domain.
        sender: substring of the envelope sender, From address or From display name
            (case-insensitive).
        text: substring of the subject (case-insensitive).
        since / until: received at or after ``since``, strictly before ``until``.
        before: keyset cursor: only ids strictly smaller (older) than this one.
        limit: page size, 1..MAX_PAGE.
    """

    state: State | None = None
    brand: str | None = None
    verdict: str | None = None
    recipient: str | None = None
    sender: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of results, newest first.

    Attributes:
        items: at most ``query.limit`` items.
        total: how many items match the filters (ignoring ``before`` and ``limit``).
        next_before: pass as ``before`` for the next (older) page; None on the last.
    """

    items: tuple[HeldItem, ...]
    total: int
    next_before: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit trail: who did what, when, to which item, and the result.

    Attributes:
        at: when (aware, UTC).
        actor: who: a review-page user name, ``cli:<unix user>``, ``purge``, ``milter``.
        action: what (``release``, ``delete``, ``purge``, ``login``, ...).
        qid: the item concerned, or None (a login).
        result: ``ok``, ``refused``, ``failed``, ``busy``, ``conflict``...
        detail: free text: the relay's SMTP reply, the error, the client address.
        extra: JSON-ready details (ids of a purge, the allowed sender...).
    """

    at: datetime
    actor: str
    action: Action
    qid: str | None
    result: str
    detail: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def now(  # noqa: PLR0917 - mirrors the dataclass's field order
        cls,
        actor: str,
        action: Action,
        qid: str | None,
        result: str,
        detail: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """An entry stamped with the current UTC time."""
        return cls(datetime.now(UTC), actor, action, qid, result, detail, dict(extra or {}))


@dataclass(frozen=True, slots=True)
class ReleaseClaim:
    """Proof that the holder won ``held → releasing`` for one item.

    Pass it back to ``finish_release``. ``record`` is the item's full record as it was
    when claimed (envelope to replay, verdict); ``token`` is backend-private (a lock
    handle, a row version) and must not be interpreted by callers.
    """

    qid: str
    actor: str
    record: QuarantineRecord
    token: Any = None


@runtime_checkable
class QuarantineBackend(Protocol):
    """What a quarantine store offers. See the module docstring for the shared contract."""

    def schema_version(self) -> int:
        """The schema version of the opened store (equals ``SCHEMA_VERSION`` once open).

        Opening a store whose version is newer than ``SCHEMA_VERSION`` raises
        QuarantineError; an older one is migrated when opened (or by ``migrate``).
        """
        ...

    def put(
        self,
        raw: bytes,
        envelope: Envelope,
        verdict: Mapping[str, Any],
        *,
        received_at: datetime | None = None,
    ) -> str:
        """Store a message durably and return its new id (state ``held``).

        ``verdict`` is ``Verdict.as_dict()``. When this returns, the bytes, the metadata
        and the index row are committed (fsync / transaction commit): the front-end only
        then answers the MTA. On any failure it raises QuarantineError and nothing is
        listed: no partial item is ever visible to ``search`` or ``get``. The front-end
        calls exactly ``put(raw, envelope, verdict_dict)``.
        """
        ...

    def get(self, qid: str) -> QuarantineRecord:
        """The full record of ``qid`` (envelope, verdict, release attempts, status)."""
        ...

    def read_message(self, qid: str) -> bytes:
        """The stored bytes of ``qid``, verified against the recorded size and SHA-256
        (a mismatch raises QuarantineError: corrupt)."""
        ...

    def search(self, query: ListQuery) -> ListPage:
        """Items matching ``query``, newest first, one page. Must stay fast (index on
        id/time, state, brand, verdict, recipient) at 100,000+ items."""
        ...

    def claim_release(self, qid: str, actor: str, *, force: bool = False) -> ReleaseClaim:
        """Win ``held → releasing`` for ``qid`` (single winner across processes).

        Raises QuarantineBusy when another caller holds it (``releasing``),
        QuarantineConflict when it is already ``released`` (unless ``force``; ``force``
        also takes over a ``releasing`` left by a dead process), QuarantineNotFound.
        """
        ...

    def finish_release(
        self,
        claim: ReleaseClaim,
        attempt: Mapping[str, Any],
        *,
        accepted: bool,
        delete: bool = False,
    ) -> QuarantineRecord:
        """End a release: record ``attempt`` (``at``, ``relay``, ``ok``, ``reply``,
        ``refused``) in the item's history, then ``released`` (and removed when
        ``delete``) if the relay ``accepted`` with 2xx, else back to ``held``.
        Returns the updated record (the last known one when deleted)."""
        ...

    def record_attempt(self, claim: ReleaseClaim, attempt: Mapping[str, Any]) -> None:
        """Add a failed ``attempt`` to the item's history while keeping the claim (the
        release will be retried)."""
        ...

    def abandon(self, claim: ReleaseClaim) -> None:
        """Let go of ``claim`` without changing the state: the item stays ``releasing``
        (the outcome is unknown, e.g. cancelled while the relay had the data)."""
        ...

    def delete(self, qid: str, *, actor: str = "-") -> None:
        """Remove ``qid`` (``held`` or ``released``); QuarantineBusy while releasing."""
        ...

    def purge(
        self,
        older_than: timedelta,
        status: State | None = None,
        dry_run: bool = False,
        *,
        actor: str = "purge",
    ) -> Sequence[str]:
        """Delete items received more than ``older_than`` ago (optionally only in
        ``status``); return their ids. Items being released are skipped."""
        ...

    def record_action(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the audit trail (durably: a committed write)."""
        ...

    def audit_trail(self, qid: str | None = None, limit: int = 100) -> Sequence[AuditEntry]:
        """Audit entries, newest first; only those about ``qid`` when given."""
        ...

    def release_key(self) -> bytes:
        """The secret (>= 32 bytes) that signs release tokens for this store.

        Every gateway sharing the store must see the same key, so the filter recognises
        mail released from any review page (``milter.quarantine.token``).
        """
        ...

    def close(self) -> None:
        """Release connections and file handles. The object is unusable afterwards."""
        ...

"""The local quarantine store: durable files plus a SQLite index, one ``QuarantineBackend``.

``FileStore`` (files.py) keeps each message and its metadata as fsynced files: they
are the truth. ``SqliteIndex`` (index.py, ``DIR/index.sqlite3``) lists them fast and
holds the ``releasing`` claims; ``DIR/audit.log`` is the audit trail's durable copy.

``put`` commits the files, then the index row, and only then returns: the front-end
answers the MTA after both. If the index write fails the files are removed and the
error raised (the MTA is told to retry). A crash between the two leaves files without
a row; opening a store reconciles the index with the files (missing rows added, rows
of vanished records dropped), and a deleted index is rebuilt whole. See
docs/quarantine.md.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from milter.model.envelope import Envelope
from milter.quarantine import auditlog
from milter.quarantine.backend import (
    AuditEntry,
    ListPage,
    ListQuery,
    ReleaseClaim,
    State,
)
from milter.quarantine.errors import (
    QuarantineBusy,
    QuarantineConflict,
    QuarantineError,
)
from milter.quarantine.files import STALE_AFTER, FileStore
from milter.quarantine.fsio import fsync_dir, unlink_quietly, write_synced
from milter.quarantine.index import SqliteIndex
from milter.quarantine.record import QuarantineRecord
from milter.quarantine.token import trust_key

INDEX_NAME = "index.sqlite3"
AUDIT_NAME = "audit.log"
KEY_NAME = "release.key"


class QuarantineStore(FileStore):
    """Held messages under one directory, indexed; implements ``QuarantineBackend``."""

    def __init__(self, directory: Path, stale_after: timedelta = STALE_AFTER) -> None:
        """Open the store at ``directory`` (created 0700), its index and release key."""
        super().__init__(directory, stale_after)
        self.audit_path = self.directory / AUDIT_NAME
        self.index = SqliteIndex(self.directory / INDEX_NAME, self._owner)
        self._key = self._load_key()
        trust_key(self._key)
        self.reconcile(rebuilt=self.index.created)

    # -- index upkeep --------------------------------------------------------------------

    def reconcile(self, rebuilt: bool = False) -> tuple[int, int]:
        """Make the index match the files; return (rows added, rows dropped).

        ``rebuilt``: the index is new, so the audit trail is re-read from ``audit.log``.
        """
        on_disk = set(self.ids())
        indexed = self.index.ids()
        gone = indexed - on_disk
        for qid in gone:
            self.index.remove(qid)
        records = []
        for qid in sorted(on_disk - indexed):
            with contextlib.suppress(QuarantineError):  # corrupt: `list` reports it
                records.append(self.get(qid))
        if records:
            self.index.add(records)
        if rebuilt and self.index.audit_count() == 0:
            self.index.add_audit(auditlog.read(self.audit_path))
        return len(records), len(gone)

    def reindex(self) -> tuple[int, int]:
        """Drop the index file and build it again from the files and ``audit.log``."""
        self.index.close()
        for suffix in ("", "-wal", "-shm"):
            unlink_quietly(Path(f"{self.index.path}{suffix}"))
        self.index = SqliteIndex(self.index.path, self._owner)
        return self.reconcile(rebuilt=True)

    def _load_key(self) -> bytes:
        path = self.directory / KEY_NAME
        with contextlib.suppress(FileNotFoundError):
            return self._read_key(path)
        tmp = self._tmp_path("release-key", ".key")
        try:
            write_synced(tmp, secrets.token_bytes(32), owner=self._owner)
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(tmp, path)
            fsync_dir(self.directory)
        except OSError as exc:
            raise QuarantineError(f"cannot create the release key {path}: {exc}") from None
        finally:
            unlink_quietly(tmp)
        return self._read_key(path)

    @staticmethod
    def _read_key(path: Path) -> bytes:
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise QuarantineError(f"cannot read the release key {path}: {exc}") from None
        if len(key) < 32:
            raise QuarantineError(f"the release key {path} is shorter than 32 bytes")
        return key

    # -- QuarantineBackend -------------------------------------------------------------------

    def schema_version(self) -> int:
        """The index's schema version."""
        return self.index.schema_version()

    def put_record(
        self,
        raw: bytes,
        envelope: Envelope,
        verdict: Mapping[str, Any],
        *,
        received_at: datetime | None = None,
    ) -> QuarantineRecord:
        """Files first (the durable copy), then the index row; both before returning."""
        record = super().put_record(raw, envelope, verdict, received_at=received_at)
        try:
            self.index.add([record])
        except QuarantineError:
            with contextlib.suppress(QuarantineError):
                super().delete(record.id)
            raise
        return record

    def search(self, query: ListQuery) -> ListPage:
        """One page of items from the index."""
        return self.index.search(query)

    def brands(self) -> builtins.list[str]:
        """Brands present in the store (for filter menus)."""
        return self.index.brands()

    def add_attempt(
        self, qid: str, attempt: Mapping[str, Any], released_at: datetime | None = None
    ) -> QuarantineRecord:
        """Append a release attempt (files) and refresh the index row."""
        record = super().add_attempt(qid, attempt, released_at)
        self.index.add([record])
        return record

    def claim_release(self, qid: str, actor: str, *, force: bool = False) -> ReleaseClaim:
        """Lock the record (``flock``, kept until ``finish_release``) and mark it releasing."""
        fd = self.acquire(qid)
        try:
            record = self.get(qid)
            state = self.index.state(qid)
            if state == "releasing" and not force:
                raise QuarantineConflict(
                    f"a previous release of {qid} was interrupted: the relay may have "
                    "taken it; check the relay's log, then release again with force"
                )
            if record.status == "released" and not force:
                when = record.released_at.isoformat() if record.released_at else "earlier"
                raise QuarantineConflict(f"{qid} was already released ({when})")
            if state is None:
                self.index.add([record])
            self.index.transition(qid, ("held", "released", "releasing"), "releasing", actor)
        except BaseException:
            os.close(fd)
            raise
        return ReleaseClaim(qid, actor, record, fd)

    def finish_release(
        self,
        claim: ReleaseClaim,
        attempt: Mapping[str, Any],
        *,
        accepted: bool,
        delete: bool = False,
    ) -> QuarantineRecord:
        """Record the attempt; released (or deleted) if accepted, else held again."""
        try:
            when = datetime.fromisoformat(str(attempt["at"])) if accepted else None
            record = super().add_attempt(claim.qid, attempt, when)
            self.index.add([record])  # the row's state follows the record: held/released
            if accepted and delete:
                self.delete(claim.qid, actor=claim.actor, locked=True)
            return record
        finally:
            os.close(claim.token)

    def record_attempt(self, claim: ReleaseClaim, attempt: Mapping[str, Any]) -> None:
        """Add a failed attempt to the record; the index row stays ``releasing``."""
        record = super().add_attempt(claim.qid, attempt)
        self.index.add([record], state="releasing")

    def abandon(self, claim: ReleaseClaim) -> None:
        """Unlock without a state change (the row stays ``releasing``)."""
        os.close(claim.token)

    def delete(self, qid: str, *, actor: str = "-", locked: bool = False) -> None:
        """Remove ``qid``: files first (the record disappears), then its index row."""
        if not locked:
            with self.lock(qid):
                self.delete(qid, actor=actor, locked=True)
            return
        if self.index.state(qid) == "releasing":
            raise QuarantineBusy(f"{qid} has an unfinished release; release it with force first")
        try:
            super().delete(qid, locked=True)
        finally:
            self.index.remove(qid)

    def purge(
        self,
        older_than: timedelta,
        status: State | None = None,
        dry_run: bool = False,
        *,
        actor: str = "purge",
    ) -> builtins.list[str]:
        """Delete old records (FileStore.purge, through the indexed ``delete``)."""
        if status == "releasing":
            return []
        purged = super().purge(older_than, status, dry_run)
        if purged and not dry_run:
            detail = f"{len(purged)} record(s)"
            self.record_action(AuditEntry.now(actor, "purge", None, "ok", detail, {"ids": purged}))
        return purged

    def record_action(self, entry: AuditEntry) -> None:
        """Append to ``audit.log`` (durable) then to the index's audit table."""
        auditlog.append(self.audit_path, entry, self._owner)
        with contextlib.suppress(QuarantineError):  # the log has it; a rebuild re-reads it
            self.index.add_audit([entry])

    def audit_trail(self, qid: str | None = None, limit: int = 100) -> builtins.list[AuditEntry]:
        """Audit entries, newest first."""
        return self.index.audit(qid, limit)

    def release_key(self) -> bytes:
        """The HMAC key of release tokens (``DIR/release.key``, 32 random bytes)."""
        return self._key

    def close(self) -> None:
        """Close the index connection."""
        self.index.close()

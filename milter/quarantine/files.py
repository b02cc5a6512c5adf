"""The durable quarantine files: one directory, two files per held message.

Layout (see docs/quarantine.md)::

    DIR/                      mode 0700
      <id>.eml                the message bytes exactly as received (0600)
      <id>.json               metadata: envelope, verdict, status, release history (0600)
      tmp/                    files of writes in progress; stale ones are removed

A record exists when and only when ``<id>.json`` exists: ``put`` publishes the message
file first and the metadata last, each written to ``tmp/``, fsynced, linked or renamed
into place, then the directory is fsynced. A crash leaves either the whole record or
nothing visible (an orphan ``.eml`` or tmp file at most, ignored and later cleaned).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from milter.model.envelope import Envelope
from milter.quarantine.errors import (
    QuarantineBusy,
    QuarantineError,
    QuarantineNotFound,
)
from milter.quarantine.fsio import (
    fsync_dir,
    make_private_dir,
    service_owner,
    unlink_quietly,
    write_synced,
)
from milter.quarantine.headers import summary_headers
from milter.quarantine.ids import id_time, is_id, new_id, validate_id
from milter.quarantine.record import (
    QuarantineRecord,
    Status,
    record_from_json,
    record_to_json,
)

STALE_AFTER = timedelta(hours=1)
_ID_ATTEMPTS = 8


def _fail(action: str, where: Path, exc: OSError) -> QuarantineError:
    reason = exc.strerror or str(exc)
    return QuarantineError(f"cannot {action} {where}: {reason} (errno {exc.errno})")


class FileStore:
    """Held messages as files under one directory; safe for several processes at once.

    ``QuarantineStore`` (store.py) adds the SQLite index and the backend interface."""

    def __init__(self, directory: Path, stale_after: timedelta = STALE_AFTER) -> None:
        """Open (creating with mode 0700 if missing) the store at ``directory``.

        Work files older than ``stale_after`` (left by a crash) are removed.
        """
        self.directory = Path(directory)
        self.tmp = self.directory / "tmp"
        try:
            make_private_dir(self.directory)
            self._owner = service_owner(self.directory)
            make_private_dir(self.tmp)
            if self._owner is not None:
                os.chown(self.tmp, *self._owner)
        except OSError as exc:
            raise _fail("create the quarantine directory", self.directory, exc) from None
        self.cleanup(stale_after)

    # -- paths ---------------------------------------------------------------------------

    def message_path(self, qid: str) -> Path:
        """Where the bytes of record ``qid`` live (``qid`` validated)."""
        return self.directory / f"{validate_id(qid)}.eml"

    def meta_path(self, qid: str) -> Path:
        """Where the metadata of record ``qid`` lives (``qid`` validated)."""
        return self.directory / f"{validate_id(qid)}.json"

    def _tmp_path(self, qid: str, suffix: str) -> Path:
        return self.tmp / f"{qid}.{os.getpid()}.{os.urandom(4).hex()}{suffix}.tmp"

    # -- writing -------------------------------------------------------------------------

    def put(
        self,
        raw: bytes,
        envelope: Envelope,
        verdict: Mapping[str, Any],
        *,
        received_at: datetime | None = None,
    ) -> str:
        """Store a message durably and return its new id (see ``put_record``)."""
        return self.put_record(raw, envelope, verdict, received_at=received_at).id

    def put_record(
        self,
        raw: bytes,
        envelope: Envelope,
        verdict: Mapping[str, Any],
        *,
        received_at: datetime | None = None,
    ) -> QuarantineRecord:
        """Store a message durably and return its new record.

        When this returns, the message bytes and metadata are on disk (fsynced, directory
        entries fsynced). Any failure raises QuarantineError and leaves no record.
        ``received_at`` (default: now) is for imports and tests.
        """
        received_at = (received_at or datetime.now(UTC)).astimezone(UTC)
        subject, header_from = summary_headers(raw)
        for _ in range(_ID_ATTEMPTS):
            record = QuarantineRecord(
                id=new_id(received_at),
                received_at=received_at,
                envelope=envelope,
                verdict=dict(verdict),
                size=len(raw),
                sha256=hashlib.sha256(raw).hexdigest(),
                subject=subject,
                header_from=header_from,
            )
            meta = record_to_json(record)
            if self._publish(record.id, raw, meta):
                return record
        raise QuarantineError(f"cannot allocate a free quarantine id in {self.directory}")

    def _publish(self, qid: str, raw: bytes, meta: bytes) -> bool:
        """Write one record; False if ``qid`` is already taken (caller retries)."""
        eml, json_path = self.message_path(qid), self.meta_path(qid)
        tmp_eml, tmp_json = self._tmp_path(qid, ".eml"), self._tmp_path(qid, ".json")
        published: list[Path] = []
        try:
            write_synced(tmp_eml, raw, owner=self._owner)
            write_synced(tmp_json, meta, owner=self._owner)
            try:
                os.link(tmp_eml, eml)  # never overwrites: claims the id
            except FileExistsError:
                return False
            published.append(eml)
            fsync_dir(self.directory)
            os.rename(tmp_json, json_path)  # the commit point
            published.append(json_path)
            fsync_dir(self.directory)
        except OSError as exc:
            for path in reversed(published):  # metadata first: the record disappears
                unlink_quietly(path)
            with contextlib.suppress(OSError):
                fsync_dir(self.directory)
            raise _fail("quarantine a message in", self.directory, exc) from None
        finally:
            unlink_quietly(tmp_eml)
            unlink_quietly(tmp_json)
        return True

    def _rewrite_meta(self, record: QuarantineRecord) -> None:
        """Replace the metadata of an existing record atomically and durably."""
        target = self.meta_path(record.id)
        tmp = self._tmp_path(record.id, ".json")
        try:
            write_synced(tmp, record_to_json(record), owner=self._owner)
            os.rename(tmp, target)
            fsync_dir(self.directory)
        except OSError as exc:
            unlink_quietly(tmp)
            raise _fail("update", target, exc) from None

    def add_attempt(
        self, qid: str, attempt: Mapping[str, Any], released_at: datetime | None = None
    ) -> QuarantineRecord:
        """Append a release attempt; with ``released_at`` the record becomes released."""
        record = self.get(qid).with_attempt(attempt, released_at)
        self._rewrite_meta(record)
        return record

    def delete(self, qid: str, *, locked: bool = False) -> None:
        """Remove a record (metadata first, then the message). Not found → error.

        Pass ``locked=True`` when the caller already holds ``lock(qid)``.
        """
        if not locked:
            with self.lock(qid):
                self.delete(qid, locked=True)
            return
        meta = self.meta_path(qid)
        try:
            os.unlink(meta)
        except FileNotFoundError:
            raise QuarantineNotFound(f"no quarantined message {qid} in {self.directory}") from None
        except OSError as exc:
            raise _fail("delete", meta, exc) from None
        unlink_quietly(self.message_path(qid))
        try:
            fsync_dir(self.directory)
        except OSError as exc:
            raise _fail("sync", self.directory, exc) from None

    @contextlib.contextmanager
    def lock(self, qid: str) -> Iterator[None]:
        """Hold an exclusive lock on record ``qid`` (release and delete take it).

        Raises QuarantineNotFound if the record is absent, QuarantineBusy if another
        process holds the lock. The lock is an ``flock`` on the message file, which is
        never replaced, so it is released by the kernel if the holder dies.
        """
        fd = self.acquire(qid)
        try:
            yield
        finally:
            os.close(fd)

    def acquire(self, qid: str) -> int:
        """Take the lock of ``lock(qid)`` and return its descriptor; close it to unlock."""
        path = self.message_path(qid)
        if not self.meta_path(qid).exists():
            raise QuarantineNotFound(f"no quarantined message {qid} in {self.directory}")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise QuarantineError(f"corrupt quarantine record {path}: message missing") from None
        except OSError as exc:
            raise _fail("open", path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise QuarantineBusy(
                    f"{qid} is being released or deleted by another process"
                ) from None
            raise _fail("lock", path, exc) from None
        return fd

    # -- reading -------------------------------------------------------------------------

    def get(self, qid: str) -> QuarantineRecord:
        """The record ``qid``; QuarantineNotFound if absent, QuarantineError if corrupt."""
        path = self.meta_path(qid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise QuarantineNotFound(f"no quarantined message {qid} in {self.directory}") from None
        except OSError as exc:
            raise _fail("read", path, exc) from None
        record = record_from_json(data, str(path))
        if record.id != qid:
            raise QuarantineError(f"corrupt quarantine record {path}: id says {record.id!r}")
        return record

    def read_message(self, qid: str) -> bytes:
        """The stored bytes of ``qid``, checked against the recorded size and SHA-256."""
        record = self.get(qid)
        path = self.message_path(qid)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _fail("read", path, exc) from None
        if len(raw) != record.size or hashlib.sha256(raw).hexdigest() != record.sha256:
            raise QuarantineError(f"corrupt quarantine record {path}: size or SHA-256 mismatch")
        return raw

    def ids(self) -> list[str]:
        """Ids of every record, newest first (no file is opened)."""
        try:
            names = [e.name for e in os.scandir(self.directory) if e.name.endswith(".json")]
        except OSError as exc:
            raise _fail("list", self.directory, exc) from None
        return sorted((n[:-5] for n in names if is_id(n[:-5])), reverse=True)

    def list(
        self,
        *,
        status: Status | None = None,
        brand: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        recipient: str | None = None,
        limit: int | None = None,
        errors: list[QuarantineError] | None = None,
    ) -> list[QuarantineRecord]:
        """Records newest first, filtered.

        ``recipient`` matches an envelope recipient case-insensitively, or a recipient
        domain when it starts with ``@``. Unreadable records are skipped and appended to
        ``errors`` when given (so one bad file never hides the others).
        """
        out: list[QuarantineRecord] = []
        for qid in self.ids():
            stamp = id_time(qid)
            if until is not None and stamp >= until:
                continue
            if since is not None and stamp < since:
                break  # ids are newest first
            try:
                record = self.get(qid)
            except QuarantineNotFound:
                continue  # deleted meanwhile
            except QuarantineError as exc:
                if errors is not None:
                    errors.append(exc)
                continue
            if _matches(record, status, brand, recipient):
                out.append(record)
                if limit is not None and len(out) >= limit:
                    break
        return out

    # -- housekeeping --------------------------------------------------------------------

    def purge(
        self, older_than: timedelta, status: Status | None = None, dry_run: bool = False
    ) -> builtins.list[str]:
        """Delete records received more than ``older_than`` ago; return their ids.

        Records being released by another process are skipped.
        """
        cutoff = datetime.now(UTC) - older_than
        purged: builtins.list[str] = []
        for qid in self.ids():
            if id_time(qid) >= cutoff:
                continue
            try:
                if status is not None and self.get(qid).status != status:
                    continue
                if not dry_run:
                    self.delete(qid)
            except (QuarantineNotFound, QuarantineBusy):
                continue
            purged.append(qid)
        if not dry_run:
            self.cleanup(STALE_AFTER)
        return purged

    def cleanup(self, stale_after: timedelta = STALE_AFTER) -> int:
        """Remove work files and orphan messages older than ``stale_after``; return count.

        A recent file may belong to a ``put`` in progress in another process, so only
        files whose modification time is older than ``stale_after`` are touched.
        """
        limit = datetime.now(UTC).timestamp() - stale_after.total_seconds()
        removed = 0
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.tmp):
                if entry.name.endswith(".tmp") and _older(entry, limit):
                    unlink_quietly(Path(entry.path))
                    removed += 1
        with contextlib.suppress(OSError):
            messages: dict[str, os.DirEntry[str]] = {}
            records: set[str] = set()
            for entry in os.scandir(self.directory):
                stem, _, ext = entry.name.rpartition(".")
                if ext == "eml":
                    messages[stem] = entry
                elif ext == "json":
                    records.add(stem)
            for stem in messages.keys() - records:  # stat only the orphans, not every file
                entry = messages[stem]
                if is_id(stem) and _older(entry, limit) and not self.meta_path(stem).exists():
                    unlink_quietly(Path(entry.path))
                    removed += 1
        return removed


def _older(entry: os.DirEntry[str], limit: float) -> bool:
    try:
        return entry.stat(follow_symlinks=False).st_mtime < limit
    except OSError:
        return False


def _matches(
    record: QuarantineRecord, status: str | None, brand: str | None, recipient: str | None
) -> bool:
    if status is not None and record.status != status:
        return False
    if brand is not None and (record.brand or "").lower() != brand.lower():
        return False
    if recipient is not None:
        wanted = recipient.lower()
        rcpts = [r.lower() for r in record.envelope.rcpts]
        if wanted.startswith("@"):
            return any(r.endswith(wanted) for r in rcpts)
        return wanted in rcpts
    return True

"""The SQLite index of a local quarantine: one row per held message, states, audit trail.

The files (``<id>.eml`` + ``<id>.json``) stay the source of truth; this index makes
listing, filtering and paging fast without opening them, holds the ``releasing``
claim that only one process can win, and keeps the audit trail queryable. It can be
deleted at any time: ``QuarantineStore`` rebuilds it from the files (and the audit
trail from ``audit.log``).

SQLite (stdlib ``sqlite3``) because it is embedded, needs no setup, is safe for several
processes (file locks, WAL) and durable (``synchronous=FULL``). The schema version is
``PRAGMA user_version``; a newer one than the code knows is refused.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from milter.quarantine.backend import (
    MAX_PAGE,
    SCHEMA_VERSION,
    AuditEntry,
    HeldItem,
    ListPage,
    ListQuery,
    State,
)
from milter.quarantine.errors import QuarantineError
from milter.quarantine.record import QuarantineRecord

_SCHEMA_V1 = """
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('held', 'releasing', 'released')),
    mail_from TEXT NOT NULL,
    rcpts TEXT NOT NULL,
    from_name TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    brand TEXT,
    verdict TEXT NOT NULL,
    score REAL NOT NULL,
    rule TEXT NOT NULL,
    codes TEXT NOT NULL,
    size INTEGER NOT NULL,
    released_at TEXT,
    claimed_by TEXT,
    claimed_at TEXT
) WITHOUT ROWID;
CREATE INDEX items_state ON items (state, id);
CREATE INDEX items_brand ON items (brand COLLATE NOCASE, id);
CREATE INDEX items_verdict ON items (verdict, id);
CREATE TABLE rcpts (
    address TEXT NOT NULL COLLATE NOCASE,
    domain TEXT NOT NULL COLLATE NOCASE,
    id TEXT NOT NULL,
    PRIMARY KEY (address, id)
) WITHOUT ROWID;
CREATE INDEX rcpts_domain ON rcpts (domain, id);
CREATE INDEX rcpts_id ON rcpts (id);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    qid TEXT,
    result TEXT NOT NULL,
    detail TEXT NOT NULL,
    extra TEXT NOT NULL
);
CREATE INDEX audit_qid ON audit (qid, seq);
"""
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}
_OPEN_SECONDS = 10.0  # how long a start waits for another process opening the same new index
_BUSY = re.compile(r"locked|busy", re.I)

_COLUMNS = (
    "id, received_at, state, mail_from, rcpts, from_name, from_addr, subject, brand, "
    "verdict, score, rule, codes, size, released_at"
)


def item_of(record: QuarantineRecord, state: State | None = None) -> HeldItem:
    """The listing row for ``record`` (From parsed into display name and address)."""
    name, addr = parseaddr(record.header_from)
    verdict = record.verdict
    reasons = verdict.get("reasons") or []
    first = reasons[0] if reasons and isinstance(reasons[0], dict) else {}
    codes: list[str] = []
    for finding in verdict.get("findings") or []:
        code = finding.get("code") if isinstance(finding, dict) else None
        if isinstance(code, str) and code not in codes:
            codes.append(code)
    score = verdict.get("score")
    return HeldItem(
        id=record.id,
        received_at=record.received_at,
        state=state or record.status,
        mail_from=record.envelope.mail_from or "",
        rcpts=record.envelope.rcpts,
        from_name=name or ("" if addr else record.header_from),
        from_addr=addr,
        subject=record.subject,
        brand=record.brand,
        verdict=record.disposition,
        score=float(score) if isinstance(score, int | float) else 0.0,
        rule=str(first.get("rule", "")),
        codes=tuple(codes),
        size=record.size,
        released_at=record.released_at,
    )


def _stamp(when: datetime) -> str:
    """The id prefix of ``when``: ids compare with it lexically in time order."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _row_item(row: sqlite3.Row) -> HeldItem:
    return HeldItem(
        id=row["id"],
        received_at=datetime.fromisoformat(row["received_at"]),
        state=row["state"],
        mail_from=row["mail_from"],
        rcpts=tuple(json.loads(row["rcpts"])),
        from_name=row["from_name"],
        from_addr=row["from_addr"],
        subject=row["subject"],
        brand=row["brand"],
        verdict=row["verdict"],
        score=row["score"],
        rule=row["rule"],
        codes=tuple(row["codes"].split()),
        size=row["size"],
        released_at=_time(row["released_at"]),
    )


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(query: ListQuery) -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND) and parameters for ``query`` without paging."""
    conds: list[str] = []
    params: list[Any] = []
    if query.state is not None:
        conds.append("state = ?")
        params.append(query.state)
    if query.brand:
        conds.append("brand = ? COLLATE NOCASE")
        params.append(query.brand)
    if query.verdict:
        conds.append("verdict = ?")
        params.append(query.verdict)
    if query.recipient:
        wanted = query.recipient.strip()
        if wanted.startswith("@"):
            conds.append("id IN (SELECT id FROM rcpts WHERE domain = ?)")
            params.append(wanted[1:])
        else:
            conds.append("id IN (SELECT id FROM rcpts WHERE address = ?)")
            params.append(wanted)
    if query.sender:
        conds.append(
            "(lower(mail_from) LIKE ? ESCAPE '\\' OR lower(from_addr) LIKE ? ESCAPE '\\'"
            " OR lower(from_name) LIKE ? ESCAPE '\\')"
        )
        params += [_like(query.sender)] * 3
    if query.text:
        conds.append("lower(subject) LIKE ? ESCAPE '\\'")
        params.append(_like(query.text))
    if query.since is not None:
        conds.append("id >= ?")
        params.append(_stamp(query.since))
    if query.until is not None:
        conds.append("id < ?")
        params.append(_stamp(query.until))
    return (" AND ".join(conds) or "1"), params


class SqliteIndex:
    """The index file of one local store. Thread-safe; reopens itself after ``fork``."""

    def __init__(self, path: Path, owner: tuple[int, int] | None = None) -> None:
        """Open (creating and migrating as needed) the index at ``path``."""
        self.path = Path(path)
        self._owner = owner
        self._lock = threading.RLock()
        self._pid = -1
        self._db: sqlite3.Connection | None = None
        self.created = not self.path.exists()
        with self._conn():
            pass

    # -- connection ----------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        deadline = time.monotonic() + _OPEN_SECONDS
        pause = 0.01
        while True:
            try:
                db = self._connect()
                break
            except sqlite3.OperationalError as exc:
                # Workers starting together on a new index: switching it to WAL answers
                # "database is locked" at once (SQLite calls no busy handler there), so
                # one worker failed its start. Try again; the other has switched it.
                if not _BUSY.search(str(exc)) or time.monotonic() + pause > deadline:
                    raise QuarantineError(
                        f"cannot open the quarantine index {self.path}: {exc}"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
            except sqlite3.Error as exc:
                raise QuarantineError(
                    f"cannot open the quarantine index {self.path}: {exc}"
                ) from None
        if self._owner is not None:
            for suffix in ("", "-wal", "-shm"):
                target = Path(f"{self.path}{suffix}")
                if target.exists():
                    os.chown(target, *self._owner)
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise QuarantineError(
                f"the quarantine index {self.path} has schema version {version}, newer than "
                f"this Tocsin ({SCHEMA_VERSION}); upgrade Tocsin or remove the index to rebuild"
            )
        if version == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # another process?
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None or self._pid != os.getpid():
                self._db = self._open()  # a forked child never reuses its parent's handle
                self._pid = os.getpid()
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise QuarantineError(f"quarantine index {self.path}: {exc}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: the database write lock is taken)."""
        with self._conn() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def schema_version(self) -> int:
        """``PRAGMA user_version`` of the open index."""
        with self._conn() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # -- items ---------------------------------------------------------------------------

    def add(self, records: Iterable[QuarantineRecord], state: State | None = None) -> None:
        """Insert or replace the rows of ``records`` (one transaction); their state is
        the record's status unless ``state`` is given."""
        with self._write() as db:
            for record in records:
                self._upsert(db, item_of(record, state))

    @staticmethod
    def _upsert(db: sqlite3.Connection, item: HeldItem) -> None:
        db.execute(
            f"INSERT OR REPLACE INTO items ({_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item.id,
                item.received_at.isoformat(),
                item.state,
                item.mail_from,
                json.dumps(list(item.rcpts), ensure_ascii=False),
                item.from_name,
                item.from_addr,
                item.subject,
                item.brand,
                item.verdict,
                item.score,
                item.rule,
                " ".join(item.codes),
                item.size,
                item.released_at.isoformat() if item.released_at else None,
            ),
        )
        db.execute("DELETE FROM rcpts WHERE id = ?", (item.id,))
        db.executemany(
            "INSERT OR IGNORE INTO rcpts (address, domain, id) VALUES (?, ?, ?)",
            [(r, r.rpartition("@")[2], item.id) for r in item.rcpts],
        )

    def remove(self, qid: str) -> None:
        """Drop the row of ``qid`` (no error when absent)."""
        with self._write() as db:
            db.execute("DELETE FROM items WHERE id = ?", (qid,))
            db.execute("DELETE FROM rcpts WHERE id = ?", (qid,))

    def state(self, qid: str) -> State | None:
        """The indexed state of ``qid``, or None when it has no row."""
        with self._conn() as db:
            row = db.execute("SELECT state FROM items WHERE id = ?", (qid,)).fetchone()
        return None if row is None else row["state"]

    def transition(
        self, qid: str, allowed: tuple[State, ...], to: State, actor: str | None = None
    ) -> State | None:
        """Move ``qid`` to ``to`` if its state is in ``allowed``; single winner.

        Returns the state found before (None if no row). The caller compares it with
        ``allowed`` to know whether it won.
        """
        with self._write() as db:
            row = db.execute("SELECT state FROM items WHERE id = ?", (qid,)).fetchone()
            if row is None or row["state"] not in allowed:
                return None if row is None else row["state"]
            claimed = datetime.now(UTC).isoformat() if to == "releasing" else None
            db.execute(
                "UPDATE items SET state = ?, claimed_by = ?, claimed_at = ? WHERE id = ?",
                (to, actor if to == "releasing" else None, claimed, qid),
            )
            return row["state"]  # type: ignore[no-any-return]

    def ids(self) -> set[str]:
        """Every indexed id."""
        with self._conn() as db:
            return {row[0] for row in db.execute("SELECT id FROM items")}

    def count(self) -> int:
        """Number of indexed items."""
        with self._conn() as db:
            return int(db.execute("SELECT count(*) FROM items").fetchone()[0])

    def search(self, query: ListQuery) -> ListPage:
        """One page of items matching ``query``, newest first, with the total count."""
        limit = max(1, min(MAX_PAGE, query.limit))
        where, params = _where(query)
        page_where, page_params = where, list(params)
        if query.before:
            page_where += " AND id < ?"
            page_params.append(query.before)
        with self._conn() as db:
            total = db.execute(f"SELECT count(*) FROM items WHERE {where}", params).fetchone()[0]
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE {page_where} ORDER BY id DESC LIMIT ?",
                [*page_params, limit + 1],
            ).fetchall()
        items = tuple(_row_item(r) for r in rows[:limit])
        more = len(rows) > limit
        return ListPage(items, int(total), items[-1].id if more and items else None)

    def brands(self) -> list[str]:
        """Distinct brands present (for filter menus)."""
        with self._conn() as db:
            rows = db.execute("SELECT DISTINCT brand FROM items WHERE brand IS NOT NULL")
            return sorted(str(r[0]) for r in rows)

    # -- audit ---------------------------------------------------------------------------

    def add_audit(self, entries: Iterable[AuditEntry]) -> None:
        """Append audit entries (one transaction)."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO audit (at, actor, action, qid, result, detail, extra) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.at.isoformat(),
                        e.actor,
                        e.action,
                        e.qid,
                        e.result,
                        e.detail,
                        json.dumps(dict(e.extra), ensure_ascii=False),
                    )
                    for e in entries
                ],
            )

    def audit(self, qid: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first (only ``qid``'s when given)."""
        sql = "SELECT * FROM audit"
        params: list[Any] = []
        if qid is not None:
            sql += " WHERE qid = ?"
            params.append(qid)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(max(1, limit))
        with self._conn() as db:
            rows = db.execute(sql, params).fetchall()
        return [
            AuditEntry(
                at=datetime.fromisoformat(r["at"]),
                actor=r["actor"],
                action=r["action"],
                qid=r["qid"],
                result=r["result"],
                detail=r["detail"],
                extra=json.loads(r["extra"] or "{}"),
            )
            for r in rows
        ]

    def audit_count(self) -> int:
        """Number of audit entries in the index."""
        with self._conn() as db:
            return int(db.execute("SELECT count(*) FROM audit").fetchone()[0])

"""The quarantine in PostgreSQL, shared by several gateways (psycopg 3, connection pool).

Implements ``QuarantineBackend`` (``milter.quarantine.backend``): the index row and the
message bytes are written in **one transaction**, committed (``synchronous_commit=on``)
before ``put`` returns, so the front-end answers the MTA only once the copy is durable in
the database, and a writer that dies mid-transaction leaves nothing listed. Any database
failure (down, slow past ``timeout``, refusing the write, schema not migrated) raises
``QuarantineError``; the front-end turns that into a 4xx and the MTA keeps the message.

Releases: ``claim_release`` is a conditional ``UPDATE … WHERE state = 'held'``; two
reviewers (on two gateways) racing on one message get one winner, the other
``QuarantineBusy``. ``finish_release`` only acts on the claim it was given (a random
token in the row), so a forced take-over cannot be undone by the first claimant.

The pool (psycopg_pool) is created lazily in the process that uses it (milter workers
fork after start-up), checks each connection before lending it (so a restarted
PostgreSQL costs no failed message), and reconnects in the background: gateways recover
by themselves when the database is back. See docs/shared-quarantine.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from milter.model.envelope import Envelope
from milter.quarantine.backend import (
    MAX_PAGE,
    AuditEntry,
    HeldItem,
    ListPage,
    ListQuery,
    ReleaseClaim,
    State,
)
from milter.quarantine.errors import (
    QuarantineBusy,
    QuarantineConflict,
    QuarantineError,
    QuarantineNotFound,
)
from milter.quarantine.headers import summary_headers
from milter.quarantine.ids import new_id, validate_id
from milter.quarantine.index import item_of
from milter.quarantine.postgres_config import DatabaseTarget
from milter.quarantine.postgres_schema import SENDER_TEXT, VERSION_QUERY, check_version
from milter.quarantine.record import QuarantineRecord, envelope_from_json, envelope_to_json
from milter.quarantine.token import trust_key

log = logging.getLogger("tocsin.quarantine")


class DatabaseUnavailable(QuarantineError):
    """PostgreSQL cannot be used right now (down, unreachable, saturated, refusing
    logins, schema not migrated): nothing was written; retry later."""


_ID_ATTEMPTS = 8
_PURGE_BATCH = 5000
_RELEASE_KEY = "release_key"
_RELEASE_LOCK = 0x70C5  # first key of the two-key advisory locks held during a release

_RECORD_COLUMNS = (
    "id, received_at, state, size, sha256, envelope, verdict, subject, header_from, "
    "released_at, attempts"
)
_ITEM_COLUMNS = (
    "id, received_at, state, mail_from, rcpts, from_name, from_addr, subject, brand, "
    "disposition, score, rule, codes, size, released_at"
)


def _safe_text(value: str) -> str:
    """``value`` as PostgreSQL text accepts it: no NUL, no lone surrogates (display copy)."""
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _json_text(value: Any) -> str:
    """Lossless ASCII JSON (lone surrogates and NUL become ``\\u`` escapes)."""
    try:
        return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise QuarantineError(f"metadata is not JSON-serialisable: {exc}") from None


def _rcpt_keys(rcpts: Sequence[str]) -> list[str]:
    keys: list[str] = []
    for rcpt in rcpts:
        address = _safe_text(rcpt).lower()
        for key in (address, "@" + address.rpartition("@")[2]):
            if key not in keys:
                keys.append(key)
    return keys


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{_safe_text(escaped)}%"


def _record(row: Mapping[str, Any]) -> QuarantineRecord:
    envelope = json.loads(row["envelope"])
    return QuarantineRecord(
        id=row["id"],
        received_at=row["received_at"].astimezone(UTC),
        envelope=envelope_from_json(envelope),
        verdict=dict(json.loads(row["verdict"])),
        size=int(row["size"]),
        sha256=row["sha256"],
        status="released" if row["state"] == "released" else "held",
        subject=row["subject"],
        header_from=row["header_from"],
        released_at=row["released_at"].astimezone(UTC) if row["released_at"] else None,
        attempts=tuple(dict(a) for a in json.loads(row["attempts"])),
    )


def _item(row: Mapping[str, Any]) -> HeldItem:
    return HeldItem(
        id=row["id"],
        received_at=row["received_at"].astimezone(UTC),
        state=row["state"],
        mail_from=row["mail_from"],
        rcpts=tuple(row["rcpts"]),
        from_name=row["from_name"],
        from_addr=row["from_addr"],
        subject=row["subject"],
        brand=row["brand"],
        verdict=row["disposition"],
        score=float(row["score"]),
        rule=row["rule"],
        codes=tuple(row["codes"]),
        size=int(row["size"]),
        released_at=row["released_at"].astimezone(UTC) if row["released_at"] else None,
    )


def _conditions(query: ListQuery) -> list[sql.Composable]:
    """SQL conditions for ``query``'s filters (not its paging)."""
    conds: list[sql.Composable] = []

    def add(template: str, *values: Any) -> None:
        conds.append(sql.SQL(template).format(*(sql.Literal(v) for v in values)))

    if query.state is not None:
        add("state = {}", query.state)
    if query.brand:
        add("brand = {}", _safe_text(query.brand).lower())  # stored lower-case
    if query.verdict:
        add("disposition = {}", _safe_text(query.verdict))
    if query.recipient:
        add("rcpt_keys @> ARRAY[{}]::text[]", _safe_text(query.recipient.strip()).lower())
    if query.sender:
        add(f"({SENDER_TEXT}) ILIKE {{}}", _like(query.sender))
    if query.text:
        add("subject ILIKE {}", _like(query.text))
    if query.since is not None:
        add("received_at >= {}", query.since)
    if query.until is not None:
        add("received_at < {}", query.until)
    return conds


def _where(conds: Sequence[sql.Composable]) -> sql.Composable:
    if not conds:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds)


class PostgresStore:
    """A quarantine kept in one PostgreSQL database; thread-safe, fork-aware."""

    def __init__(
        self,
        target: DatabaseTarget,
        *,
        gateway: str | None = None,
        pool_size: int = 4,
        timeout: float = 10.0,
        statement_timeout: float = 15.0,
        check_schema: bool = True,
    ) -> None:
        """Prepare (without connecting) a store on ``target``.

        ``timeout`` bounds how long a caller waits for a connection (PostgreSQL down or
        every connection busy) and ``statement_timeout`` how long one statement may run;
        past either, the call raises QuarantineError (the milter tempfails). ``gateway``
        (default: this host's name) is written beside each message it holds.
        """
        self.target = target
        self.gateway = _safe_text(gateway or socket.gethostname())
        self.pool_size = max(1, pool_size)
        self.timeout = timeout
        self.statement_timeout = statement_timeout
        self._check_schema = check_schema
        self._lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] | None = None
        self._pid = -1
        self._schema_checked = False
        self._release_key: bytes | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.target.display})"

    # -- connections ---------------------------------------------------------------------

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[DictRow]]:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                # A forked child never touches its parent's pool (sockets, threads).
                kwargs = self.target.connect_kwargs()
                options = (
                    "-c synchronous_commit=on"
                    f" -c statement_timeout={int(self.statement_timeout * 1000)}"
                    f" -c lock_timeout={int(self.statement_timeout * 1000)}"
                    " -c idle_in_transaction_session_timeout=600000"
                )
                kwargs["options"] = options
                kwargs["row_factory"] = dict_row
                pool = ConnectionPool(
                    self.target.dsn,
                    connection_class=psycopg.Connection[DictRow],
                    kwargs=kwargs,
                    min_size=1,
                    max_size=self.pool_size,
                    open=False,
                    timeout=self.timeout,
                    check=ConnectionPool.check_connection,
                    reconnect_timeout=60.0,
                    name="tocsin-quarantine",
                )
                pool.open(wait=False)
                self._pool = pool
                self._pid = os.getpid()
                self._schema_checked = False
            return self._pool

    @contextmanager
    def _transaction(self, action: str) -> Iterator[psycopg.Connection[DictRow]]:
        """A connection inside one transaction (committed on success, else rolled back).

        Database and pool errors become QuarantineError naming ``action`` and the DSN
        (without password); the store's own QuarantineErrors pass through.
        """
        try:
            pool = self._get_pool()
            with pool.connection() as conn:
                if not self._schema_checked and self._check_schema:
                    row = conn.execute(VERSION_QUERY).fetchone()
                    conn.commit()
                    check_version(int(row["version"]) if row else 0, self.target.display)
                    self._schema_checked = True
                with conn.transaction():
                    yield conn
        except PoolTimeout:
            raise DatabaseUnavailable(
                f"cannot {action}: no connection to {self.target.display} within "
                f"{self.timeout:g}s (PostgreSQL down, unreachable or saturated)"
            ) from None
        except psycopg.errors.UndefinedTable:
            raise DatabaseUnavailable(
                f"cannot {action}: {self.target.display} has no quarantine schema; "
                "run `tocsin quarantine migrate`"
            ) from None
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot {action} in {self.target.display}: {_first_line(exc)}"
            ) from None
        except psycopg.Error as exc:
            raise QuarantineError(
                f"cannot {action} in {self.target.display}: {_first_line(exc)}"
            ) from None

    def schema_version(self) -> int:
        """The schema version of the database (refused if not this code's)."""
        with self._transaction("read the schema version") as conn:
            row = conn.execute(VERSION_QUERY).fetchone()
        return int(row["version"]) if row else 0

    def close(self) -> None:
        """Close the pool (in the process that opened it)."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None

    # -- writing -------------------------------------------------------------------------

    def put(
        self,
        raw: bytes,
        envelope: Envelope,
        verdict: Mapping[str, Any],
        *,
        received_at: datetime | None = None,
    ) -> str:
        """Store a message and its index row in one committed transaction; return the id."""
        received_at = (received_at or datetime.now(UTC)).astimezone(UTC)
        subject, header_from = summary_headers(raw)
        digest = hashlib.sha256(raw).hexdigest()
        for _ in range(_ID_ATTEMPTS):
            record = QuarantineRecord(
                id=new_id(received_at),
                received_at=received_at,
                envelope=envelope,
                verdict=dict(verdict),
                size=len(raw),
                sha256=digest,
                subject=subject,
                header_from=header_from,
            )
            if self._insert(record, raw, "quarantine a message"):
                return record.id
        raise QuarantineError(f"cannot allocate a free quarantine id in {self.target.display}")

    def import_record(self, record: QuarantineRecord, raw: bytes) -> bool:
        """Insert an existing record (from a local store) keeping its id, state and
        history; False if that id is already in the database (re-running is safe)."""
        validate_id(record.id)
        if len(raw) != record.size or hashlib.sha256(raw).hexdigest() != record.sha256:
            raise QuarantineError(f"{record.id}: message does not match its size or SHA-256")
        return self._insert(record, raw, "import a message")

    def _insert(self, record: QuarantineRecord, raw: bytes, action: str) -> bool:
        """Item row and bytes in one transaction; False if the id is taken."""
        item = item_of(record)
        with self._transaction(action) as conn:
            row = conn.execute(
                """
                INSERT INTO quarantine_item (
                    id, received_at, state, gateway, size, sha256, mail_from, rcpts,
                    rcpt_keys, envelope, subject, header_from, from_name, from_addr, brand,
                    disposition, score, rule, codes, verdict, released_at, attempts)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                        %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (id) DO NOTHING
                RETURNING id
                """,
                (
                    record.id,
                    record.received_at,
                    record.status,
                    self.gateway,
                    record.size,
                    record.sha256,
                    _safe_text(item.mail_from),
                    [_safe_text(r) for r in item.rcpts],
                    _rcpt_keys(item.rcpts),
                    _json_text(envelope_to_json(record.envelope)),
                    _safe_text(item.subject),
                    _safe_text(record.header_from),
                    _safe_text(item.from_name),
                    _safe_text(item.from_addr),
                    _safe_text(item.brand).lower() if item.brand is not None else None,
                    _safe_text(item.verdict),
                    item.score,
                    _safe_text(item.rule),
                    [_safe_text(c) for c in item.codes],
                    _json_text(record.verdict),
                    record.released_at,
                    _json_text(list(record.attempts)),
                ),
            ).fetchone()
            if row is None:
                return False  # id taken (48 random bits: practically never); try another
            conn.execute(
                "INSERT INTO quarantine_message (id, raw) VALUES (%s, %s)", (record.id, raw)
            )
        return True

    # -- reading -------------------------------------------------------------------------

    def get(self, qid: str) -> QuarantineRecord:
        """The full record of ``qid``."""
        validate_id(qid)
        with self._transaction("read a quarantined message") as conn:
            row = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM quarantine_item WHERE id = %s", (qid,)
            ).fetchone()
        if row is None:
            raise QuarantineNotFound(f"no quarantined message {qid} in {self.target.display}")
        return _record(row)

    def read_message(self, qid: str) -> bytes:
        """The stored bytes of ``qid``, checked against the recorded size and SHA-256."""
        validate_id(qid)
        with self._transaction("read a quarantined message") as conn:
            row = conn.execute(
                "SELECT i.size, i.sha256, m.raw FROM quarantine_item i"
                " JOIN quarantine_message m USING (id) WHERE i.id = %s",
                (qid,),
            ).fetchone()
        if row is None:
            raise QuarantineNotFound(f"no quarantined message {qid} in {self.target.display}")
        raw = bytes(row["raw"])
        if len(raw) != row["size"] or hashlib.sha256(raw).hexdigest() != row["sha256"]:
            raise QuarantineError(
                f"corrupt quarantine record {qid} in {self.target.display}: "
                "size or SHA-256 mismatch"
            )
        return raw

    def search(self, query: ListQuery) -> ListPage:
        """One page of matching items, newest first, and how many match in all."""
        limit = max(1, min(MAX_PAGE, query.limit))
        conds = _conditions(query)
        page = list(conds)
        if query.before:
            page.append(sql.SQL("id < {}").format(sql.Literal(validate_id(query.before))))
        listing = sql.SQL("SELECT {} FROM quarantine_item{} ORDER BY id DESC LIMIT {}").format(
            sql.SQL(_ITEM_COLUMNS), _where(page), sql.Literal(limit + 1)
        )
        counting = sql.SQL("SELECT count(*) AS n FROM quarantine_item{}").format(_where(conds))
        with self._transaction("list the quarantine") as conn:
            rows = conn.execute(listing).fetchall()
            total_row = conn.execute(counting).fetchone()
        items = tuple(_item(r) for r in rows[:limit])
        more = len(rows) > limit
        total = int(total_row["n"]) if total_row else 0
        return ListPage(items, total, items[-1].id if more and items else None)

    def brands(self) -> list[str]:
        """The brands present, sorted (the review page's filter menu).

        A loose index scan on ``(brand, id)``: one index probe per distinct brand, so it
        stays instant at millions of rows, where ``SELECT DISTINCT`` would read them all.
        """
        with self._transaction("list the brands") as conn:
            rows = conn.execute(
                """
                WITH RECURSIVE b(brand) AS (
                    SELECT min(brand) FROM quarantine_item
                    UNION ALL
                    SELECT (SELECT min(brand) FROM quarantine_item WHERE brand > b.brand)
                      FROM b WHERE b.brand IS NOT NULL)
                SELECT brand FROM b WHERE brand IS NOT NULL
                """
            ).fetchall()
        return [r["brand"] for r in rows]

    # -- release -------------------------------------------------------------------------

    def _connect(self, action: str) -> psycopg.Connection[DictRow]:
        """A connection of its own (not pooled), autocommit: it holds a release's lock."""
        try:
            return psycopg.connect(
                self.target.dsn,
                autocommit=True,
                row_factory=dict_row,
                **self.target.connect_kwargs(),
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot {action} in {self.target.display}: {_first_line(exc)}"
            ) from None

    def claim_release(self, qid: str, actor: str, *, force: bool = False) -> ReleaseClaim:
        """Win ``held → releasing`` for ``qid``: exactly one caller, on any gateway, wins.

        The winner holds a session advisory lock on the item for the whole release, on
        a connection of its own: a concurrent claimer gets QuarantineBusy. If the winner
        dies, PostgreSQL drops its lock with its connection and the row stays
        ``releasing``: the next claimer gets QuarantineConflict (the relay may have the
        message) unless ``force``. The state change itself is a conditional UPDATE.
        """
        validate_id(qid)
        holder = self._connect("claim a release")
        try:
            row = holder.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS won", (_RELEASE_LOCK, qid)
            ).fetchone()
            if row is None or not row["won"]:
                raise QuarantineBusy(f"{qid} is being released by another process")
            token = secrets.token_hex(16)
            allowed = ["held", "releasing", "released"] if force else ["held"]
            with self._transaction("claim a release") as conn:
                claimed = conn.execute(
                    f"""
                    UPDATE quarantine_item
                       SET state = 'releasing', claimed_by = %s, claimed_at = now(),
                           claim_token = %s
                     WHERE id = %s AND state = ANY(%s)
                    RETURNING {_RECORD_COLUMNS}
                    """,
                    (_safe_text(actor), token, qid, allowed),
                ).fetchone()
                found = None
                if claimed is None:
                    found = conn.execute(
                        "SELECT state, claimed_by, released_at FROM quarantine_item WHERE id = %s",
                        (qid,),
                    ).fetchone()
            if claimed is None:
                raise self._refusal(qid, found)
            return ReleaseClaim(qid, actor, _record(claimed), _Claim(holder, token))
        except BaseException:
            holder.close()
            raise

    def _refusal(self, qid: str, found: Mapping[str, Any] | None) -> QuarantineError:
        if found is None:
            return QuarantineNotFound(f"no quarantined message {qid} in {self.target.display}")
        if found["state"] == "releasing":
            return QuarantineConflict(
                f"a previous release of {qid} (by {found['claimed_by'] or 'unknown'}) was "
                "interrupted: the relay may have taken it; check the relay's log, then "
                "release again with force"
            )
        when = found["released_at"].isoformat() if found["released_at"] else "earlier"
        return QuarantineConflict(f"{qid} was already released ({when})")

    def _update_claimed(
        self,
        claim: ReleaseClaim,
        attempt: Mapping[str, Any],
        state: State,
        released_at: datetime | None,
        delete: bool = False,
    ) -> QuarantineRecord:
        """Append ``attempt`` and set ``state``, only if ``claim`` still holds the row."""
        token = _claim_of(claim).token
        with self._transaction("record a release") as conn:
            row = conn.execute(
                "SELECT attempts FROM quarantine_item"
                " WHERE id = %s AND state = 'releasing' AND claim_token = %s FOR UPDATE",
                (claim.qid, token),
            ).fetchone()
            if row is None:
                raise QuarantineConflict(
                    f"{claim.qid}: the release claim of {claim.actor} was lost (taken over "
                    "with force, or the message deleted)"
                )
            attempts = [*json.loads(row["attempts"]), dict(attempt)]
            keep = state == "releasing"
            updated = conn.execute(
                f"""
                UPDATE quarantine_item
                   SET state = %s, attempts = %s, released_at = coalesce(%s, released_at),
                       claimed_by = CASE WHEN %s THEN claimed_by END,
                       claimed_at = CASE WHEN %s THEN claimed_at END,
                       claim_token = CASE WHEN %s THEN claim_token END
                 WHERE id = %s
                RETURNING {_RECORD_COLUMNS}
                """,
                (state, _json_text(attempts), released_at, keep, keep, keep, claim.qid),
            ).fetchone()
            if delete:
                conn.execute("DELETE FROM quarantine_item WHERE id = %s", (claim.qid,))
        if updated is None:  # pragma: no cover - the row is locked above
            raise QuarantineError(f"{claim.qid} vanished while locked")
        return _record(updated)

    def finish_release(
        self,
        claim: ReleaseClaim,
        attempt: Mapping[str, Any],
        *,
        accepted: bool,
        delete: bool = False,
    ) -> QuarantineRecord:
        """Record the attempt; ``released`` (or removed) if accepted, else ``held`` again.

        The claim's lock is let go in every case."""
        try:
            when = _attempt_time(attempt) if accepted else None
            state: State = "released" if accepted else "held"
            return self._update_claimed(claim, attempt, state, when, delete and accepted)
        finally:
            self.abandon(claim)

    def record_attempt(self, claim: ReleaseClaim, attempt: Mapping[str, Any]) -> None:
        """Add a failed attempt (to be retried); the item stays ``releasing``."""
        self._update_claimed(claim, attempt, "releasing", None)

    def abandon(self, claim: ReleaseClaim) -> None:
        """Let go of the claim's lock; the row stays as it is."""
        _claim_of(claim).holder.close()

    # -- deleting ------------------------------------------------------------------------

    def delete(self, qid: str, *, actor: str = "-") -> None:
        """Remove ``qid`` and its bytes; QuarantineBusy while it is being released.

        The caller writes the audit entry (``actor`` is part of the shared signature)."""
        validate_id(qid)
        with self._transaction("delete a quarantined message") as conn:
            row = conn.execute(
                "DELETE FROM quarantine_item WHERE id = %s AND state <> 'releasing' RETURNING id",
                (qid,),
            ).fetchone()
            if row is None:
                found = conn.execute(
                    "SELECT state, claimed_by FROM quarantine_item WHERE id = %s", (qid,)
                ).fetchone()
        if row is None:
            if found is None:
                raise QuarantineNotFound(f"no quarantined message {qid} in {self.target.display}")
            raise QuarantineBusy(
                f"{qid} is being released by {found['claimed_by'] or 'another process'};"
                " try again when it is done"
            )

    def purge(
        self,
        older_than: timedelta,
        status: State | None = None,
        dry_run: bool = False,
        *,
        actor: str = "purge",
    ) -> Sequence[str]:
        """Delete items received more than ``older_than`` ago, in batches, database-side.

        The cut-off is the database's clock (the same for every gateway); items being
        released are skipped; one audit entry says how many went.
        """
        states = [status] if status is not None else ["held", "released"]
        states = [s for s in states if s != "releasing"]
        purged: list[str] = []
        if dry_run:
            with self._transaction("list old messages") as conn:
                rows = conn.execute(
                    "SELECT id FROM quarantine_item WHERE received_at < now() - %s"
                    " AND state = ANY(%s) ORDER BY id",
                    (older_than, states),
                ).fetchall()
            return [r["id"] for r in rows]
        while True:
            with self._transaction("purge old messages") as conn:
                rows = conn.execute(
                    """
                    DELETE FROM quarantine_item WHERE id IN (
                        SELECT id FROM quarantine_item
                         WHERE received_at < now() - %s AND state = ANY(%s)
                         ORDER BY received_at
                         LIMIT %s
                         FOR UPDATE SKIP LOCKED)
                    RETURNING id
                    """,
                    (older_than, states, _PURGE_BATCH),
                ).fetchall()
            purged.extend(r["id"] for r in rows)
            if len(rows) < _PURGE_BATCH:
                break
        if purged:
            detail = f"{len(purged)} item(s) older than {older_than}"
            extra = {"count": len(purged), "ids": sorted(purged)[:1000]}  # bounded entry
            self.record_action(AuditEntry(_now(), actor, "purge", None, "ok", detail, extra))
        return sorted(purged)

    # -- audit ---------------------------------------------------------------------------

    @staticmethod
    def _audit(conn: psycopg.Connection[Any], entry: AuditEntry) -> None:
        conn.execute(
            "INSERT INTO quarantine_audit (at, actor, action, item_id, result, detail, extra)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                entry.at,
                _safe_text(entry.actor),
                entry.action,
                entry.qid,
                _safe_text(entry.result),
                _safe_text(entry.detail),
                _json_text(dict(entry.extra)),
            ),
        )

    def record_action(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the audit trail (committed)."""
        with self._transaction("write the audit trail") as conn:
            self._audit(conn, entry)

    def audit_trail(self, qid: str | None = None, limit: int = 100) -> Sequence[AuditEntry]:
        """Audit entries, newest first; only those about ``qid`` when given."""
        where: sql.Composable = sql.SQL("")
        if qid is not None:
            where = sql.SQL(" WHERE item_id = {}").format(sql.Literal(validate_id(qid)))
        query = sql.SQL(
            "SELECT at, actor, action, item_id, result, detail, extra FROM quarantine_audit{}"
            " ORDER BY seq DESC LIMIT {}"
        ).format(where, sql.Literal(max(1, limit)))
        with self._transaction("read the audit trail") as conn:
            rows = conn.execute(query).fetchall()
        return [
            AuditEntry(
                at=r["at"].astimezone(UTC),
                actor=r["actor"],
                action=r["action"],
                qid=r["item_id"],
                result=r["result"],
                detail=r["detail"],
                extra=json.loads(r["extra"]),
            )
            for r in rows
        ]

    # -- shared secret -------------------------------------------------------------------

    def release_key(self) -> bytes:
        """The release-token key, created once in the database and shared by every gateway."""
        if self._release_key is not None:
            return self._release_key
        with self._transaction("read the release key") as conn:
            conn.execute(
                "INSERT INTO quarantine_setting (name, value) VALUES (%s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                (_RELEASE_KEY, secrets.token_bytes(32)),
            )
            row = conn.execute(
                "SELECT value FROM quarantine_setting WHERE name = %s", (_RELEASE_KEY,)
            ).fetchone()
        if row is None:  # pragma: no cover - inserted just above in the same transaction
            raise QuarantineError("the release key vanished")
        self._release_key = bytes(row["value"])
        trust_key(self._release_key)  # mail released from any gateway passes this filter
        return self._release_key

    def connect_in_background(self, retry_seconds: float = 5.0) -> threading.Thread:
        """Open the pool and trust the shared release key now, retrying until PostgreSQL
        answers (a daemon thread), so mail released from another gateway's review page is
        recognised here even before this gateway quarantines anything."""

        def run() -> None:
            while True:
                try:
                    self.release_key()
                    return
                except QuarantineError as exc:
                    log.warning("quarantine database not reachable yet: %s", exc)
                    time.sleep(retry_seconds)

        thread = threading.Thread(target=run, name="tocsin-quarantine-connect", daemon=True)
        thread.start()
        return thread


@dataclass(frozen=True, slots=True)
class _Claim:
    """What ``ReleaseClaim.token`` holds here: the lock's connection and the row's token."""

    holder: psycopg.Connection[DictRow]
    token: str


def _claim_of(claim: ReleaseClaim) -> _Claim:
    if not isinstance(claim.token, _Claim):
        raise QuarantineError(f"{claim.qid}: not a claim of this store")
    return claim.token


def _attempt_time(attempt: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(attempt["at"])).astimezone(UTC)
    except (KeyError, ValueError):
        return datetime.now(UTC)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _now() -> datetime:
    return datetime.now(UTC)

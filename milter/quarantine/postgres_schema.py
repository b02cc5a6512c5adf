"""Versioned schema of the PostgreSQL quarantine store, and the migrations that build it.

Each migration has a number; ``tocsin_schema`` records the ones applied. ``migrate``
applies the missing ones in order, each in its own transaction together with its row in
``tocsin_schema``, under a transaction-level advisory lock so two gateways running
``tocsin quarantine migrate`` at once apply each step once. A database whose schema is
newer than this code is refused (``SchemaTooNew``): an old gateway must not write rows a
newer schema does not expect. Migrations are append-only: never edit a released one.

Tables (docs/shared-quarantine.md):

- ``quarantine_item``: one row per held message, the index the CLI and the review page
  list and filter (envelope, From, subject, brand, verdict, score, rule, codes, size,
  time, state, release attempts);
- ``quarantine_message``: the message bytes, one row per item, deleted with it; kept in
  its own table so listing never reads (or de-TOASTs) message bodies;
- ``quarantine_audit``: who did what to which item, when, with what result;
- ``quarantine_setting``: values every gateway must share (the release-token key).

The envelope, the verdict and the release attempts are kept as ASCII JSON text (``\\u``
escapes), not ``jsonb``: PostgreSQL text and ``jsonb`` cannot hold NUL or the lone
surrogates that stand for non-UTF-8 bytes an MTA may send, and release must replay the
envelope exactly. The columns the listing filters on are copies made safe for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milter.quarantine.errors import QuarantineError

# Any constant works; it only has to be the same for every Tocsin version.
MIGRATION_LOCK = 0x70C5_1A_01


#: The text a "sender contains" search looks in (one expression, so one trigram index).
SENDER_TEXT = "mail_from || ' ' || from_addr || ' ' || from_name"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its number, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "quarantine items, message bytes, audit trail; indexes on time and state",
        (
            """
            CREATE TABLE quarantine_item (
                id           text PRIMARY KEY
                             CHECK (id ~ '^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{12}$'),
                received_at  timestamptz NOT NULL,
                state        text NOT NULL DEFAULT 'held'
                             CHECK (state IN ('held', 'releasing', 'released')),
                gateway      text NOT NULL DEFAULT '',
                size         bigint NOT NULL CHECK (size >= 0),
                sha256       text NOT NULL,
                mail_from    text NOT NULL DEFAULT '',
                rcpts        text[] NOT NULL,
                rcpt_keys    text[] NOT NULL,
                envelope     text NOT NULL,
                subject      text NOT NULL DEFAULT '',
                header_from  text NOT NULL DEFAULT '',
                from_name    text NOT NULL DEFAULT '',
                from_addr    text NOT NULL DEFAULT '',
                brand        text,
                disposition  text NOT NULL DEFAULT '',
                score        double precision NOT NULL DEFAULT 0,
                rule         text NOT NULL DEFAULT '',
                codes        text[] NOT NULL DEFAULT '{}',
                verdict      text NOT NULL,
                released_at  timestamptz,
                attempts     text NOT NULL DEFAULT '[]',
                claimed_by   text,
                claimed_at   timestamptz,
                claim_token  text
            )
            """,
            """
            CREATE TABLE quarantine_message (
                id   text PRIMARY KEY REFERENCES quarantine_item (id) ON DELETE CASCADE,
                raw  bytea NOT NULL
            )
            """,
            """
            CREATE TABLE quarantine_audit (
                seq      bigserial PRIMARY KEY,
                at       timestamptz NOT NULL DEFAULT now(),
                actor    text NOT NULL,
                action   text NOT NULL,
                item_id  text,
                result   text NOT NULL,
                detail   text NOT NULL DEFAULT '',
                extra    text NOT NULL DEFAULT '{}'
            )
            """,
            """
            CREATE TABLE quarantine_setting (
                name   text PRIMARY KEY,
                value  bytea NOT NULL
            )
            """,
            # Ids sort in time order: the primary key serves "newest first" and keyset
            # paging (id < cursor). Filters have their own (filter, id) indexes; retention
            # and purge scan by receive time, with or without a state.
            "CREATE INDEX quarantine_item_state ON quarantine_item (state, id DESC)",
            "CREATE INDEX quarantine_item_time ON quarantine_item (received_at)",
            "CREATE INDEX quarantine_item_state_time ON quarantine_item (state, received_at)",
            # brand is stored lower-case: counting one brand is an index-only scan.
            "CREATE INDEX quarantine_item_brand ON quarantine_item (brand, id DESC)",
            "CREATE INDEX quarantine_item_verdict ON quarantine_item (disposition, id DESC)",
            # rcpt_keys holds each recipient and each '@domain', lower-cased.
            "CREATE INDEX quarantine_item_rcpt ON quarantine_item USING gin (rcpt_keys)",
            "CREATE INDEX quarantine_audit_item ON quarantine_audit (item_id, seq DESC)",
        ),
    ),
    Migration(
        2,
        "trigram indexes for sender and subject substring search (pg_trgm)",
        (
            # pg_trgm ships with PostgreSQL (Debian: postgresql-15) and is a trusted
            # extension: the database owner may create it without superuser rights.
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            f"CREATE INDEX quarantine_item_sender_trgm ON quarantine_item"
            f" USING gin (({SENDER_TEXT}) gin_trgm_ops)",
            "CREATE INDEX quarantine_item_subject_trgm ON quarantine_item"
            " USING gin (subject gin_trgm_ops)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS tocsin_schema (
    version      integer PRIMARY KEY,
    description  text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now()
)
"""
VERSION_QUERY = "SELECT coalesce(max(version), 0) AS version FROM tocsin_schema"
_HAS_VERSION_TABLE = "SELECT to_regclass('tocsin_schema') IS NOT NULL"


class SchemaMismatch(QuarantineError):
    """The database schema is not the one this code was written for."""


class SchemaTooNew(SchemaMismatch):
    """The database was migrated by a newer Tocsin; this one must not touch it."""


class SchemaOutdated(SchemaMismatch):
    """The database lacks migrations this code needs (run ``tocsin quarantine migrate``)."""


def check_version(found: int, where: str) -> None:
    """Raise unless ``found`` is exactly ``SCHEMA_VERSION``."""
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{where} has quarantine schema version {found}, newer than this Tocsin's "
            f"{SCHEMA_VERSION}; upgrade Tocsin on this machine"
        )
    if found < SCHEMA_VERSION:
        state = "no quarantine schema" if found == 0 else f"quarantine schema version {found}"
        raise SchemaOutdated(
            f"{where} has {state}, this Tocsin needs {SCHEMA_VERSION}; "
            "run `tocsin quarantine migrate`"
        )


def database_version(conn: Any) -> int:
    """The schema version of the database behind a psycopg (sync) connection; 0 if none."""
    with conn.cursor() as cur:
        cur.execute(_HAS_VERSION_TABLE)
        row = cur.fetchone()
        if row is None or not row[0]:
            return 0
        cur.execute(VERSION_QUERY)
        row = cur.fetchone()
        return int(row[0]) if row is not None else 0


def migrate(conn: Any, where: str) -> list[Migration]:
    """Apply the missing migrations on a psycopg (sync, non-autocommit) connection.

    Returns the migrations applied (empty when the schema is current). Raises
    SchemaTooNew if the database is ahead of this code; any SQL error rolls back the
    step in progress (earlier steps stay applied) and propagates.
    """
    applied: list[Migration] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(_CREATE_VERSION_TABLE)
    for step in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            found = database_version(conn)
            if found > SCHEMA_VERSION:
                check_version(found, where)
            if found >= step.version:
                continue
            for statement in step.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO tocsin_schema (version, description) VALUES (%s, %s)",
                (step.version, step.description),
            )
        applied.append(step)
    return applied

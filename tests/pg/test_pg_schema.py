"""Schema migrations of the PostgreSQL quarantine store, on a real private cluster."""

from __future__ import annotations

import threading

import psycopg
import pytest

from milter.quarantine.postgres_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaOutdated,
    SchemaTooNew,
    check_version,
    database_version,
    migrate,
)


def test_migrate_creates_the_schema_once_and_is_idempotent(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        assert database_version(conn) == 0
        applied = migrate(conn, "test db")
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
        assert database_version(conn) == SCHEMA_VERSION
        assert migrate(conn, "test db") == []
        rows = conn.execute("SELECT version FROM tocsin_schema ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'quarantine_item'"
            )
        }
        assert {"quarantine_item_state_time", "quarantine_item_time"} <= indexes


def test_two_concurrent_migrations_apply_each_step_once(pg_database: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(pg_database) as conn:
                migrate(conn, "test db")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with psycopg.connect(pg_database) as conn:
        count = conn.execute("SELECT count(*) FROM tocsin_schema").fetchone()
        assert count is not None
        assert count[0] == len(MIGRATIONS)


def test_a_newer_schema_is_refused(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        migrate(conn, "test db")
        conn.execute(
            "INSERT INTO tocsin_schema (version, description) VALUES (%s, 'from the future')",
            (SCHEMA_VERSION + 1,),
        )
        conn.commit()
        with pytest.raises(SchemaTooNew, match="newer than this Tocsin"):
            migrate(conn, "test db")
        assert database_version(conn) == SCHEMA_VERSION + 1


def test_check_version_names_the_remedy() -> None:
    with pytest.raises(SchemaOutdated, match="tocsin quarantine migrate"):
        check_version(0, "db")
    with pytest.raises(SchemaTooNew, match="upgrade Tocsin"):
        check_version(SCHEMA_VERSION + 3, "db")
    check_version(SCHEMA_VERSION, "db")

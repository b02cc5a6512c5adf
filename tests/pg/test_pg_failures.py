"""Failures with real parts: a writer killed mid-transaction, PostgreSQL stopped and back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from milter.model.envelope import Envelope
from milter.quarantine.backend import ListQuery
from milter.quarantine.postgres import DatabaseUnavailable, PostgresStore
from tests.support.pg import PgCluster, migrated_database, store_on

ROOT = Path(__file__).resolve().parents[2]
LURE = (ROOT / "docs" / "examples" / "cpf-lure.eml").read_bytes()
ENVELOPE = Envelope(mail_from="noreply@cpf.example.org", rcpts=("alice@example.com",))
VERDICT = {"verdict": "quarantine", "brand": "cpf", "score": 33.0, "reasons": [], "findings": []}

WRITER = """
import sys
from pathlib import Path
from milter.model.envelope import Envelope
from milter.quarantine.postgres import PostgresStore
from milter.quarantine.postgres_config import DatabaseTarget
store = PostgresStore(
    DatabaseTarget(sys.argv[1], password_file=Path(sys.argv[2]), application_name="killed-writer")
)
store.put(b"Subject: half\\r\\n\\r\\nbody\\r\\n", Envelope(rcpts=("a@b.test",)), {"verdict": "q"})
print("put returned", flush=True)
"""


def _wait(predicate: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_writer_killed_mid_transaction_leaves_nothing_listed(
    pg_cluster: PgCluster, pg_store: PostgresStore
) -> None:
    name = pg_store.target.dsn.rsplit("/", 1)[1]
    admin = psycopg.connect(pg_cluster.dsn_with_password(name), autocommit=True)
    writer: subprocess.Popen[str] | None = None
    try:
        # Hold the bytes table: the writer's put inserts its item row, then blocks on
        # the bytes, inside its one transaction.
        admin.execute("BEGIN")
        admin.execute("LOCK TABLE quarantine_message IN EXCLUSIVE MODE")
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, pg_cluster.dsn(name), str(pg_cluster.password_file)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watcher = psycopg.connect(pg_cluster.dsn_with_password(name), autocommit=True)

        def blocked_on_bytes() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'killed-writer'"
                " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO quarantine_message%'"
            ).fetchone()
            return bool(row and row[0])

        _wait(blocked_on_bytes)
        assert pg_store.search(ListQuery()).total == 0  # uncommitted: invisible
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
        admin.execute("COMMIT")  # the dead writer's backend may now go on, then finds EOF

        def writer_gone() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'killed-writer'"
            ).fetchone()
            return row == (0,)

        _wait(writer_gone)
        watcher.close()
        assert pg_store.search(ListQuery()).total == 0
        rows = admin.execute(
            "SELECT (SELECT count(*) FROM quarantine_item),"
            " (SELECT count(*) FROM quarantine_message)"
        ).fetchone()
        assert rows == (0, 0)
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
            writer.wait()
        admin.close()


def test_database_down_raises_promptly_then_recovers(own_pg_cluster: PgCluster) -> None:
    name = migrated_database(own_pg_cluster)
    store = store_on(own_pg_cluster, name, timeout=2.0)
    try:
        first = store.put(LURE, ENVELOPE, VERDICT)
        own_pg_cluster.stop()
        with pytest.raises(DatabaseUnavailable, match="cannot quarantine a message"):
            store.put(LURE, ENVELOPE, VERDICT)
        with pytest.raises(DatabaseUnavailable):
            store.search(ListQuery())
        own_pg_cluster.start()
        # The same store object (as a running gateway holds it) works again by itself.
        deadline = time.monotonic() + 60
        while True:
            try:
                second = store.put(LURE, ENVELOPE, VERDICT)
                break
            except DatabaseUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert {i.id for i in store.search(ListQuery()).items} == {first, second}
    finally:
        store.close()

"""``tocsin quarantine migrate`` and ``import`` as an admin runs them, on a real PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from milter.model.envelope import Envelope
from milter.quarantine.backend import ListQuery
from milter.quarantine.postgres import PostgresStore
from milter.quarantine.postgres_schema import SCHEMA_VERSION
from milter.quarantine.store import QuarantineStore
from tests.support.pg import PgCluster

ROOT = Path(__file__).resolve().parents[2]
LURE = (ROOT / "docs" / "examples" / "cpf-lure.eml").read_bytes()


def tocsin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "PG"))}
    return subprocess.run(
        [sys.executable, "-m", "milter", "quarantine", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**clean, **(env or {})},
    )  # fmt: skip


def test_migrate_is_idempotent_and_never_prints_the_password(pg_cluster: PgCluster) -> None:
    name = pg_cluster.create_database()
    dsn, password = pg_cluster.dsn(name), str(pg_cluster.password_file)
    try:
        dry = tocsin("migrate", "--database", dsn, "--password-file", password, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "schema version 0" in dry.stdout
        assert "would apply 1:" in dry.stdout
        first = tocsin("migrate", "--database", dsn, "--password-file", password)
        assert first.returncode == 0, first.stderr
        assert f"applied {SCHEMA_VERSION}:" in first.stdout
        again = tocsin(
            "migrate", env={"TOCSIN_QUARANTINE_DATABASE": dsn, "PGPASSWORD": pg_cluster.password}
        )
        assert again.returncode == 0, again.stderr
        assert "schema is current" in again.stdout
        with psycopg.connect(pg_cluster.dsn_with_password(name), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO tocsin_schema (version, description) VALUES (%s, 'future')",
                (SCHEMA_VERSION + 1,),
            )
        newer = tocsin("migrate", "--database", pg_cluster.dsn_with_password(name))
        assert newer.returncode == 6
        assert "upgrade Tocsin" in newer.stderr
        assert "Traceback" not in newer.stderr
        assert pg_cluster.password not in newer.stderr + newer.stdout
    finally:
        pg_cluster.drop_database(name)


def test_migrate_errors_are_one_clean_line(pg_cluster: PgCluster, tmp_path: Path) -> None:
    missing = tocsin("migrate")
    assert missing.returncode == 2
    assert "no database" in missing.stderr
    wrong = tmp_path / "pw"
    wrong.write_text("wrong-password\n")
    open_to_all = tocsin("migrate", "--database", pg_cluster.dsn(), "--password-file", str(wrong))
    assert open_to_all.returncode == 6
    assert "open to every user" in open_to_all.stderr
    wrong.chmod(0o600)
    refused = tocsin("migrate", "--database", pg_cluster.dsn(), "--password-file", str(wrong))
    assert refused.returncode == 6
    assert "password authentication failed" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = tocsin("migrate", "--database", "mysql://x@y/z")
    assert bad.returncode == 6
    assert "not a PostgreSQL DSN" in bad.stderr


def test_import_moves_a_local_quarantine_keeping_ids_and_states(
    pg_cluster: PgCluster, pg_store: PostgresStore, tmp_path: Path
) -> None:
    local = QuarantineStore(tmp_path / "q")
    envelope = Envelope(mail_from="a@lure.example", rcpts=("alice@example.net",))
    ids = [local.put(LURE, envelope, {"verdict": "quarantine", "brand": "cpf"}) for _ in range(3)]
    claim = local.claim_release(ids[0], "cli:test")
    local.finish_release(claim, {"at": "2026-11-01T10:00:00+00:00", "ok": True}, accepted=True)
    dsn = pg_store.target.dsn
    password = str(pg_cluster.password_file)
    copied = tocsin("import", str(tmp_path / "q"), "--database", dsn, "--password-file", password)
    assert copied.returncode == 0, copied.stderr
    assert "3 record(s) copied" in copied.stderr
    page = pg_store.search(ListQuery())
    assert sorted(i.id for i in page.items) == sorted(ids)
    assert {i.id: i.state for i in page.items}[ids[0]] == "released"
    assert pg_store.read_message(ids[1]) == LURE
    assert pg_store.get(ids[2]).envelope == envelope
    moved = tocsin(
        "import", str(tmp_path / "q"), "--remove", "--database", dsn, "--password-file", password
    )
    assert moved.returncode == 0, moved.stderr
    assert "0 record(s) moved" in moved.stderr
    assert "3 already there" in moved.stderr
    assert QuarantineStore(tmp_path / "q").ids() == []
    assert pg_store.search(ListQuery()).total == 3


def test_import_stops_cleanly_when_the_database_is_unusable(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    local = QuarantineStore(tmp_path / "q")
    local.put(LURE, Envelope(rcpts=("a@b.test",)), {"verdict": "quarantine"})
    name = pg_cluster.create_database()  # not migrated
    try:
        result = tocsin(
            "import", str(tmp_path / "q"), "--remove", "--database", pg_cluster.dsn(name),
            "--password-file", str(pg_cluster.password_file),
        )  # fmt: skip
    finally:
        pg_cluster.drop_database(name)
    assert result.returncode == 6
    assert "tocsin quarantine migrate" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(QuarantineStore(tmp_path / "q").ids()) == 1  # nothing removed locally


def test_a_missing_client_library_is_named_with_its_remedy(tmp_path: Path) -> None:
    # PSYCOPG_IMPL=c asks psycopg for its C build, absent here: psycopg then fails to
    # import exactly as it does on a gateway without libpq5.
    env = {"PSYCOPG_IMPL": "c"}
    probe = subprocess.run(
        [sys.executable, "-c", "import psycopg"], env={**os.environ, **env}, check=False,
        capture_output=True,
    )  # fmt: skip
    if probe.returncode == 0:
        pytest.skip("psycopg's C implementation is installed: cannot simulate a missing libpq")
    result = tocsin("migrate", "--database", "postgresql://tocsin@127.0.0.1:1/tocsin", env=env)
    assert result.returncode == 6
    assert "apt-get install libpq5" in result.stderr
    assert "Traceback" not in result.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = tmp_path / "tocsin.yaml"
    settings.write_text("quarantine:\n  database: postgresql://tocsin@127.0.0.1:1/tocsin\n")
    serve = subprocess.run(
        [sys.executable, "-m", "milter", "serve", "--no-dns", "--config", str(settings),
         "--milter", f"inet:127.0.0.1:{port}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **env},
    )  # fmt: skip
    assert serve.returncode == 5
    assert "cannot start" in serve.stderr
    assert "libpq5" in serve.stderr
    assert "Traceback" not in serve.stderr

"""A private PostgreSQL cluster on loopback, for the shared-quarantine tests.

Debian's ``postgresql`` package (installed by the README's test command) provides the
binaries; nothing of the system's own cluster is used. The cluster lives in a fresh
temporary directory, runs as the unprivileged ``nobody`` user (PostgreSQL refuses to run
as root, and the tests run as root), listens on 127.0.0.1 on a free port with its unix
socket in the same directory, and authenticates TCP clients with a SCRAM password so
the tests exercise the same DSN + password-file path as a real gateway.

``PgCluster.stop`` is idempotent; the fixtures below always call it (``-m immediate``),
pass or fail, and fall back to SIGKILL of the postmaster if ``pg_ctl`` cannot stop it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from milter.quarantine.postgres import PostgresStore

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "nobody"
SUPERUSER = "tocsin_admin"


def pg_missing_reason() -> str | None:
    """Why a private cluster cannot run here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return (
                f"PostgreSQL 15 is not installed ({PG_BIN / tool} missing; the README's "
                "test command installs Debian's postgresql package)"
            )
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"psycopg cannot be imported ({exc}); pip install -e '.[test]' and libpq5"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"no {RUN_AS!r} user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgCluster:
    """One throw-away PostgreSQL cluster; ``dsn(db)`` gives a password-less DSN.

    The password is in ``password_file`` (mode 0600), like a gateway's secret file.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tocsin-pg-")))
    port: int = field(default_factory=_free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    _started: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(RUN_AS)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _tool(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PG_BIN / name), *args],
            check=check,
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "TZ": "UTC"},
            **self._run_as(),  # type: ignore[arg-type]
        )

    def init(self) -> None:
        """initdb (UTF-8, SCRAM over TCP, trust on the private unix socket)."""
        self.root.chmod(0o700)
        pwfile = self.root / "initdb.pw"
        pwfile.write_text(self.password + "\n")
        self.password_file.write_text(self.password + "\n")
        self.password_file.chmod(0o600)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(RUN_AS)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self._tool(
            "initdb",
            "-D", str(self.data),
            "-U", SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E", "UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        )  # fmt: skip
        pwfile.unlink()

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections."""
        if not self.data.exists():
            self.init()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c max_connections=100 -c shared_buffers=32MB -c log_min_messages=warning"
        )
        result = self._tool(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
            "-l", str(self.log_path), "-o", options,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{self._log_tail()}")
        self._started = True

    def stop(self, mode: str = "immediate") -> None:
        """Stop the postmaster (idempotent); SIGKILL it if pg_ctl cannot."""
        if not self._started:
            return
        result = self._tool("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.data), check=False)
        if result.returncode != 0 and self._postmaster_pid() is not None:
            pid = self._postmaster_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.5)
        self._started = False

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
            return int(first)
        except (OSError, ValueError, IndexError):
            return None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def remove(self) -> None:
        """Stop and delete everything."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- clients ---------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """A DSN without the password (give ``password_file`` or PGPASSWORD beside it)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def dsn_with_password(self, dbname: str = "postgres") -> str:
        """A DSN with the password inline (for test helpers only)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; returns its name."""
        import psycopg
        from psycopg import sql

        name = name or f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.dsn_with_password(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting anyone still attached."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn_with_password(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def migrated_database(cluster: PgCluster) -> str:
    """A fresh database on ``cluster`` with the quarantine schema; returns its name."""
    import psycopg

    from milter.quarantine.postgres_schema import migrate

    name = cluster.create_database()
    with psycopg.connect(cluster.dsn_with_password(name)) as conn:
        migrate(conn, name)
    return name


def store_on(cluster: PgCluster, name: str, **options: Any) -> PostgresStore:
    """A store on database ``name`` using the cluster's password file, as a gateway would."""
    from milter.quarantine.postgres import PostgresStore
    from milter.quarantine.postgres_config import DatabaseTarget

    target = DatabaseTarget(cluster.dsn(name), password_file=cluster.password_file)
    return PostgresStore(target, **options)


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """A started cluster, always stopped and removed on exit."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def _skip_if_missing() -> None:
    reason = pg_missing_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One private cluster for the whole session (stopped at the end, pass or fail)."""
    _skip_if_missing()
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database on the session cluster (dropped afterwards); yields its DSN
    with the password inline."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.dsn_with_password(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def pg_store(pg_cluster: PgCluster) -> Iterator[PostgresStore]:
    """A store (gateway ``mx1.test``) on a fresh migrated database, closed and dropped
    afterwards."""
    name = migrated_database(pg_cluster)
    store = store_on(pg_cluster, name, gateway="mx1.test")
    try:
        yield store
    finally:
        store.close()
        pg_cluster.drop_database(name)


@pytest.fixture
def own_pg_cluster() -> Iterator[PgCluster]:
    """A cluster of this test alone (for tests that stop and restart PostgreSQL)."""
    _skip_if_missing()
    with running_cluster() as cluster:
        yield cluster

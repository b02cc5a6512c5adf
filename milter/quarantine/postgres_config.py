"""Where the shared quarantine database is and how to log in: DSN plus a secret kept apart.

The DSN (``postgresql://tocsin@db.example.net:5432/tocsin?sslmode=verify-full``) lives in
the settings file, which is often versioned or world-readable; the password does not. It
comes, in this order, from ``password_file`` (a file holding only the password), from
the ``TOCSIN_DATABASE_PASSWORD`` environment variable (e.g. systemd's
``LoadCredential``/``EnvironmentFile``), or from libpq's own means (``PGPASSWORD``,
``~/.pgpass`` / ``PGPASSFILE``, client certificates), which psycopg honours as usual.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milter.quarantine.errors import QuarantineError

if TYPE_CHECKING:
    from milter.quarantine.postgres import PostgresStore
    from milter.quarantine.store import QuarantineStore

ENV_PASSWORD = "TOCSIN_DATABASE_PASSWORD"
ENV_DATABASE = "TOCSIN_QUARANTINE_DATABASE"
MAX_PASSWORD_BYTES = 1024
SCHEMES = ("postgresql://", "postgres://")
_QUERY_PASSWORD = re.compile(r"((?:^|[?&\s])password=)[^&\s]*", re.IGNORECASE)


def load_driver() -> None:
    """Import psycopg now, or raise QuarantineError saying how to install libpq.

    psycopg is pure Python here and loads the system's libpq (Debian: ``libpq5``, which
    the ``postgresql`` packages pull in; a gateway needs only ``apt-get install libpq5``).
    """
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QuarantineError(
            f"the PostgreSQL client library cannot be loaded ({reason}); install it with "
            "`apt-get install libpq5` (or `pip install 'psycopg[binary]'`)"
        ) from None


def is_postgres_dsn(text: str) -> bool:
    """True when ``text`` is a PostgreSQL URI (the only DSN form the settings accept)."""
    return text.startswith(SCHEMES)


def redact(dsn: str) -> str:
    """The DSN with any password (``user:secret@`` or ``password=``) replaced by ``***``."""
    text = _QUERY_PASSWORD.sub(r"\1***", dsn)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"


def read_password_file(path: Path) -> str:
    """The password in ``path`` (surrounding whitespace removed); QuarantineError if not."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()[: MAX_PASSWORD_BYTES + 1]
    except OSError as exc:
        raise QuarantineError(
            f"cannot read the database password file {path}: {exc.strerror}"
        ) from None
    if mode & 0o007:
        raise QuarantineError(
            f"the database password file {path} is open to every user "
            f"(mode {mode & 0o777:o}); chmod o-rwx it"
        )
    if len(data) > MAX_PASSWORD_BYTES:
        raise QuarantineError(f"{path}: a database password file holds one short line")
    try:
        password = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise QuarantineError(f"{path}: the database password is not UTF-8") from None
    if not password or "\n" in password:
        raise QuarantineError(f"{path}: expected the password alone on one line")
    return password


def check_settings_dsn(dsn: str) -> str:
    """A DSN fit for a settings file: PostgreSQL URI, no inline password (ValueError)."""
    if not is_postgres_dsn(dsn):
        raise ValueError(f"{redact(dsn)!r} is not a PostgreSQL DSN (postgresql://USER@HOST/DB)")
    if redact(dsn) != dsn:
        raise ValueError(
            "keep the password out of the DSN: put it in database_password_file or "
            f"${ENV_PASSWORD} (DSN: {redact(dsn)!r})"
        )
    return dsn


def check_password_file(path: Path) -> Path:
    """A password file setting: an absolute path (read, and its mode checked, when the
    database is first used, so settings validate on a machine without the secret)."""
    if not path.is_absolute():
        raise ValueError(f"{str(path)!r} must be an absolute path")
    return path


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A PostgreSQL database to keep the quarantine in."""

    dsn: str
    password_file: Path | None = None
    application_name: str = "tocsin"
    connect_timeout: int = 5

    def __post_init__(self) -> None:
        if not is_postgres_dsn(self.dsn):
            raise QuarantineError(
                f"not a PostgreSQL DSN: {redact(self.dsn)!r} (expected postgresql://…)"
            )

    @property
    def display(self) -> str:
        """The DSN without its password, for messages."""
        return redact(self.dsn)

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` / the pool's ``kwargs``."""
        kwargs: dict[str, Any] = {
            "application_name": self.application_name,
            "connect_timeout": self.connect_timeout,
        }
        if self.password_file is not None:
            kwargs["password"] = read_password_file(self.password_file)
        elif os.environ.get(ENV_PASSWORD):
            kwargs["password"] = os.environ[ENV_PASSWORD]
        return kwargs


def database_from(
    option: str | None, configured: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The DSN to use: a command-line ``option``, else ``$TOCSIN_QUARANTINE_DATABASE``,
    else the settings' ``quarantine.database``; None means the local directory store."""
    env = os.environ if environ is None else environ
    return option or env.get(ENV_DATABASE) or configured or None


def open_store(
    directory: Path,
    database: str | None,
    *,
    password_file: Path | None = None,
    pool_size: int = 4,
    timeout: float = 10.0,
    gateway: str | None = None,
    application_name: str = "tocsin",
    connect_now: bool = False,
) -> QuarantineStore | PostgresStore:
    """The quarantine the settings name: PostgreSQL when ``database`` is set, else the
    local store in ``directory`` (opened now). PostgreSQL is connected lazily, or with
    ``connect_now`` by a background thread that retries until the database answers."""
    if database is None:
        from milter.quarantine.store import QuarantineStore

        return QuarantineStore(directory)
    load_driver()
    from milter.quarantine.postgres import PostgresStore

    target = DatabaseTarget(database, password_file, application_name)
    store = PostgresStore(target, gateway=gateway, pool_size=pool_size, timeout=timeout)
    if connect_now:
        store.connect_in_background()
    return store

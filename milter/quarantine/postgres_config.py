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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milter.quarantine.errors import QuarantineError

ENV_PASSWORD = "TOCSIN_DATABASE_PASSWORD"
ENV_DATABASE = "TOCSIN_QUARANTINE_DATABASE"
MAX_PASSWORD_BYTES = 1024
SCHEMES = ("postgresql://", "postgres://")


def is_postgres_dsn(text: str) -> bool:
    """True when ``text`` is a PostgreSQL URI (the only DSN form the settings accept)."""
    return text.startswith(SCHEMES)


def redact(dsn: str) -> str:
    """The DSN with any inline password replaced by ``***`` (for messages and logs)."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return dsn
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return dsn
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"


def read_password_file(path: Path) -> str:
    """The password in ``path`` (surrounding whitespace removed); QuarantineError if not."""
    try:
        data = path.read_bytes()[: MAX_PASSWORD_BYTES + 1]
    except OSError as exc:
        raise QuarantineError(
            f"cannot read the database password file {path}: {exc.strerror}"
        ) from None
    if len(data) > MAX_PASSWORD_BYTES:
        raise QuarantineError(f"{path}: a database password file holds one short line")
    try:
        password = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise QuarantineError(f"{path}: the database password is not UTF-8") from None
    if not password or "\n" in password:
        raise QuarantineError(f"{path}: expected the password alone on one line")
    return password


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

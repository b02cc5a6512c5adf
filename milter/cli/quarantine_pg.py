"""``tocsin quarantine migrate`` and ``tocsin quarantine import DIR``: the shared
PostgreSQL quarantine (docs/shared-quarantine.md).

``migrate`` creates or upgrades the schema (idempotent; refuses a database newer than
this Tocsin). ``import DIR`` copies a local quarantine directory into the database,
keeping ids, states and release history; re-running it skips what is already there,
and ``--remove`` deletes each local copy once the database has committed it.

Exit codes (docs/cli.md): 0 ok; 2 no database given; 6 the database or a store failed
(unreachable, refused, schema too new, a record unreadable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from milter.cli.common import EXIT_OK, EXIT_USAGE, SubParsers
from milter.quarantine.errors import QuarantineError
from milter.quarantine.postgres_config import (
    ENV_DATABASE,
    DatabaseTarget,
    database_from,
    load_driver,
)

if TYPE_CHECKING:
    from milter.frontends.settings import ServeSettings
    from milter.quarantine.postgres import PostgresStore

EXIT_STORE = 6


def add_database_options(common: argparse.ArgumentParser) -> None:
    """``--database`` and ``--password-file`` on every ``tocsin quarantine`` command."""
    common.add_argument(
        "--database",
        metavar="DSN",
        help=f"shared PostgreSQL quarantine, postgresql://USER@HOST/DB (default: "
        f"${ENV_DATABASE}, else the settings' quarantine.database; --dir wins over both)",
    )
    common.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="file holding the database password (else the settings' "
        "quarantine.database_password_file, $TOCSIN_DATABASE_PASSWORD, PGPASSWORD, ~/.pgpass)",
    )


def add_postgres_commands(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add the database options to ``common``, then register ``migrate`` and ``import``
    under ``tocsin quarantine``."""
    add_database_options(common)
    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="create or upgrade the PostgreSQL quarantine schema (safe to re-run)",
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="only print the schema version and what is missing"
    )
    migrate.set_defaults(run=run_migrate)
    importer = commands.add_parser(
        "import",
        parents=[common],
        help="copy a local quarantine directory into the PostgreSQL quarantine",
    )
    importer.add_argument("source", type=Path, metavar="DIR", help="local quarantine directory")
    importer.add_argument(
        "--remove", action="store_true", help="delete each local copy once it is in the database"
    )
    importer.set_defaults(run=run_import)


def _error(message: str) -> None:
    print(f"tocsin: {message}", file=sys.stderr)


def _settings(args: argparse.Namespace) -> ServeSettings:
    from milter.frontends.settings import load_settings
    from milter.policy.errors import PolicyInvalid

    try:
        return load_settings(getattr(args, "config", None))
    except PolicyInvalid as exc:
        raise QuarantineError(f"invalid settings:\n{exc}") from None
    except OSError as exc:
        raise QuarantineError(f"cannot read {args.config}: {exc.strerror or exc}") from None


def target_of(args: argparse.Namespace, settings: ServeSettings) -> DatabaseTarget | None:
    """The database named by the options, the environment or the settings (or None)."""
    q = settings.quarantine
    dsn = database_from(args.database, q.database)
    if dsn is None:
        return None
    password_file = args.password_file or q.database_password_file
    return DatabaseTarget(dsn, password_file=password_file, application_name="tocsin-cli")


def database_store(args: argparse.Namespace, settings: ServeSettings) -> PostgresStore | None:
    """The shared store the command should use, or None for the local directory
    (``--dir`` given, or no database configured anywhere)."""
    if getattr(args, "dir", None) is not None:
        return None
    target = target_of(args, settings)
    if target is None:
        return None
    load_driver()
    from milter.quarantine.postgres import PostgresStore

    q = settings.quarantine
    return PostgresStore(target, gateway=q.gateway, timeout=q.database_timeout_seconds)


def _target_or_usage(args: argparse.Namespace) -> DatabaseTarget | int:
    try:
        target = target_of(args, _settings(args))
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE
    if target is None:
        _error(
            f"no database: give --database postgresql://…, set ${ENV_DATABASE}, or set "
            "quarantine.database in the settings (--config)"
        )
        return EXIT_USAGE
    return target


def run_migrate(args: argparse.Namespace) -> int:
    """Apply the missing schema migrations (or, with --dry-run, list them)."""
    target = _target_or_usage(args)
    if isinstance(target, int):
        return target
    try:
        load_driver()
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE
    import psycopg

    from milter.quarantine.postgres_schema import (
        MIGRATIONS,
        SCHEMA_VERSION,
        SchemaTooNew,
        check_version,
        database_version,
        migrate,
    )

    try:
        with psycopg.connect(target.dsn, **target.connect_kwargs()) as conn:
            found = database_version(conn)
            conn.commit()
            if args.dry_run:
                if found > SCHEMA_VERSION:
                    check_version(found, target.display)
                missing = [m for m in MIGRATIONS if m.version > found]
                print(f"{target.display}: schema version {found}, this Tocsin {SCHEMA_VERSION}")
                for step in missing:
                    print(f"would apply {step.version}: {step.description}")
                return EXIT_OK
            applied = migrate(conn, target.display)
    except SchemaTooNew as exc:
        _error(str(exc))
        return EXIT_STORE
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE
    except psycopg.Error as exc:
        _error(f"cannot migrate {target.display}: {_first_line(exc)}")
        return EXIT_STORE
    for step in applied:
        print(f"applied {step.version}: {step.description}")
    if not applied:
        print(f"{target.display}: schema is current (version {SCHEMA_VERSION}), nothing to do")
    return EXIT_OK


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_import(args: argparse.Namespace) -> int:
    """Copy every record of a local store into the database (idempotent)."""
    target = _target_or_usage(args)
    if isinstance(target, int):
        return target
    try:
        load_driver()
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE
    from milter.quarantine.postgres import DatabaseUnavailable, PostgresStore
    from milter.quarantine.postgres_schema import SchemaMismatch
    from milter.quarantine.store import QuarantineStore

    if not args.source.is_dir():
        _error(f"no quarantine directory at {args.source}")
        return EXIT_STORE
    from milter.cli.quarantine import actor as cli_actor

    actor = cli_actor()
    status = EXIT_OK
    imported = skipped = 0
    database = PostgresStore(target, gateway=f"import:{args.source}")
    try:
        local = QuarantineStore(args.source)
        for qid in local.ids():
            try:
                record = local.get(qid)
                raw = local.read_message(qid)
                if database.import_record(record, raw):
                    imported += 1
                else:
                    skipped += 1
                if args.remove:
                    local.delete(qid, actor=actor)
            except (DatabaseUnavailable, SchemaMismatch) as exc:
                _error(str(exc))
                status = EXIT_STORE
                break
            except QuarantineError as exc:
                _error(f"{qid}: {exc}")
                status = EXIT_STORE
    except QuarantineError as exc:
        _error(str(exc))
        status = EXIT_STORE
    finally:
        database.close()
    verb = "moved" if args.remove else "copied"
    print(
        f"{imported} record(s) {verb} into {target.display}, {skipped} already there",
        file=sys.stderr,
    )
    return status

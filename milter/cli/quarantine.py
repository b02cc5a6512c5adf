"""``tocsin quarantine {list,show,release,delete,purge,reindex,audit}``: act on held mail.

The store is the one ``tocsin serve --config FILE`` uses (``--config`` here reads the same
file: its ``quarantine.directory`` and ``quarantine.relay``); ``--dir`` and
``$TOCSIN_QUARANTINE_DIR`` override the directory. Every action is in the audit trail.

Exit codes (docs/cli.md): 0 ok; 2 usage; 3 an id is malformed or not in the store;
6 the quarantine store failed (permission, disk, corrupt record, record busy);
7 the relay did not accept a release (the message is still held). With several ids,
each is processed and the exit code is the highest one met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from milter.cli.quarantine_pg import add_postgres_commands
from milter.quarantine import (
    InvalidQuarantineId,
    QuarantineConflict,
    QuarantineError,
    QuarantineNotFound,
    QuarantineStore,
    ReleaseError,
    auditlog,
    release,
)
from milter.quarantine.backend import (
    MAX_PAGE,
    Action,
    AuditEntry,
    HeldItem,
    ListQuery,
    QuarantineBackend,
)

if TYPE_CHECKING:
    from milter.frontends.settings import ServeSettings
    from milter.quarantine.release import ReleaseTransform

EXIT_OK, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_STORE, EXIT_RELEASE = 0, 2, 3, 6, 7
DEFAULT_DIR = "/var/lib/tocsin/quarantine"
ENV_DIR = "TOCSIN_QUARANTINE_DIR"
DEFAULT_RELAY = "127.0.0.1:10026"
_DURATION = re.compile(r"(?P<n>[0-9]+)(?P<unit>[smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` → timedelta (argparse type)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 30d, 12h, 2w): {text!r}")
    return timedelta(**{_UNITS[match.group("unit")]: int(match.group("n"))})


def moment(text: str) -> datetime:
    """A point in time: a duration ago (``7d``) or an ISO date/time (UTC if naive)."""
    try:
        return datetime.now(UTC) - duration(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time (7d, 2026-11-01 or 2026-11-01T08:00): {text!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def relay(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) → (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _add_release_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    rel = commands.add_parser("release", parents=[common], help="re-inject held messages")
    rel.add_argument("ids", nargs="+", metavar="ID", help="quarantine ids")
    rel.add_argument(
        "--relay",
        type=relay,
        default=None,
        metavar="HOST:PORT",
        help=f"where to re-inject (default: the settings' quarantine.relay, {DEFAULT_RELAY})",
    )
    rel.add_argument("--delete", action="store_true", help="delete once the relay accepted")
    rel.add_argument("--force", action="store_true", help="release again an already released one")
    rel.add_argument(
        "--false-positive",
        action="store_true",
        help="the hold was a mistake: deliver as received, without the warning banner "
        "(by default a message held for impersonation keeps the banner)",
    )
    rel.add_argument(
        "--policy",
        type=Path,
        default=None,
        metavar="DIR",
        help="policy directory for the banner (default: the settings' policy_dir)",
    )
    rel.add_argument("--retries", type=int, default=0, metavar="N", help="retries on 4xx")
    rel.add_argument(
        "--retry-delay", type=float, default=5.0, metavar="SECONDS", help="between retries"
    )
    rel.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="per SMTP step")
    rel.set_defaults(run=run_release)


def add_quarantine_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tocsin quarantine`` and its sub-commands."""
    parser = sub.add_parser("quarantine", help="list, inspect, release or delete held mail")
    commands = parser.add_subparsers(dest="quarantine_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="settings file of tocsin serve: its quarantine directory and release relay",
    )
    common.add_argument(
        "--dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"quarantine directory (default: ${ENV_DIR}, the settings', or {DEFAULT_DIR})",
    )
    add_postgres_commands(commands, common)  # --database, migrate, import

    lister = commands.add_parser("list", parents=[common], help="list held messages, newest first")
    lister.add_argument("--json", action="store_true", help="one JSON object per line")
    lister.add_argument(
        "--status", choices=("held", "releasing", "released"), default=None, help="only this state"
    )
    lister.add_argument("--brand", default=None, metavar="ID", help="only this brand")
    lister.add_argument("--verdict", default=None, metavar="DISPOSITION", help="e.g. quarantine")
    lister.add_argument("--sender", default=None, metavar="TEXT", help="in sender or From")
    lister.add_argument("--subject", default=None, metavar="TEXT", help="in the subject")
    lister.add_argument(
        "--rcpt", default=None, metavar="ADDR|@DOMAIN", help="a recipient or domain"
    )
    lister.add_argument(
        "--since", type=moment, default=None, metavar="7d|DATE", help="received at or after"
    )
    lister.add_argument(
        "--until", type=moment, default=None, metavar="1d|DATE", help="received before"
    )
    lister.add_argument("--limit", type=int, default=None, metavar="N", help="print at most N")
    lister.set_defaults(run=run_list)

    show = commands.add_parser("show", parents=[common], help="inspect a held message safely")
    show.add_argument("id", metavar="ID", help="quarantine id (from list)")
    mode = show.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="record and inspection as JSON")
    mode.add_argument("--raw", action="store_true", help="write the stored bytes to stdout")
    show.add_argument("--full", action="store_true", help="do not shorten long text parts")
    show.set_defaults(run=run_show)

    _add_release_parser(commands, common)

    delete = commands.add_parser("delete", parents=[common], help="delete held messages")
    delete.add_argument("ids", nargs="+", metavar="ID", help="quarantine ids")
    delete.set_defaults(run=run_delete)

    purge = commands.add_parser("purge", parents=[common], help="delete old records")
    purge.add_argument(
        "--older-than", type=duration, required=True, metavar="30d", help="received before"
    )
    purge.add_argument(
        "--status", choices=("held", "released"), default=None, help="only this state"
    )
    purge.add_argument("--dry-run", action="store_true", help="only print what would go")
    purge.set_defaults(run=run_purge)

    reindex = commands.add_parser(
        "reindex", parents=[common], help="rebuild the index from the stored files"
    )
    reindex.set_defaults(run=run_reindex)

    audit = commands.add_parser("audit", parents=[common], help="show the audit trail")
    audit.add_argument("id", nargs="?", default=None, metavar="ID", help="only this message")
    audit.add_argument("--limit", type=int, default=100, metavar="N", help="newest N entries")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(run=run_audit)


def _settings(args: argparse.Namespace) -> ServeSettings | None:
    """The settings file named by ``--config`` (defaults without one); None after an error."""
    from milter.frontends.settings import load_settings
    from milter.policy.errors import PolicyInvalid

    try:
        return load_settings(args.config)
    except PolicyInvalid as exc:
        for problem in exc.errors:
            _error(str(problem))
        return None
    except OSError as exc:
        _error(f"cannot read {args.config}: {exc.strerror or exc}")
        return None


def _directory(args: argparse.Namespace, settings: ServeSettings) -> Path:
    if args.dir is not None:
        return Path(args.dir)
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    return settings.quarantine.directory


def _open(args: argparse.Namespace) -> QuarantineBackend | None:
    settings = _settings(args)
    if settings is None:
        return None
    args.settings = settings
    from milter.cli.quarantine_pg import database_store

    try:
        shared = database_store(args, settings)  # PostgreSQL (docs/shared-quarantine.md)
    except QuarantineError as exc:
        _error(str(exc))
        return None
    if shared is not None:
        return shared
    directory = _directory(args, settings)
    if not directory.is_dir():
        _error(f"no quarantine directory at {directory} (use --config, --dir or ${ENV_DIR})")
        return None
    try:
        return QuarantineStore(directory)
    except QuarantineError as exc:
        _error(str(exc))
        return None


def actor() -> str:
    """``cli:<login name>`` for the audit trail."""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = str(os.getuid())
    return f"cli:{name}"


def _audit(
    store: QuarantineBackend, action: Action, qid: str | None, result: str, detail: str
) -> None:
    try:
        store.record_action(AuditEntry.now(actor(), action, qid, result, detail))
    except QuarantineError as exc:
        _error(f"(the audit trail could not be written: {exc})")


def _error(message: str) -> None:
    print(f"tocsin: {message}", file=sys.stderr)


def _code(exc: QuarantineError) -> int:
    if isinstance(exc, InvalidQuarantineId | QuarantineNotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, ReleaseError | QuarantineConflict):
        return EXIT_RELEASE
    return EXIT_STORE


def _line(item: HeldItem) -> str:
    from milter.cli.quarantine_show import clean

    sender = f"{item.from_name} <{item.from_addr}>" if item.from_name else item.from_addr
    return "  ".join(
        (
            item.id,
            item.received_at.strftime("%Y-%m-%d %H:%M"),
            item.state,
            clean(item.brand or "-"),
            f"{item.score:g}",
            clean(sender or item.mail_from or "<>"),
            "→ " + clean(",".join(item.rcpts)),
            clean(item.subject[:80]),
        )
    )


def run_list(args: argparse.Namespace) -> int:
    """Print the matching items from the index, newest first."""
    store = _open(args)
    if store is None:
        return EXIT_STORE
    wanted = args.limit if args.limit is not None else None
    query = ListQuery(
        state=args.status,
        brand=args.brand,
        verdict=args.verdict,
        recipient=args.rcpt,
        sender=args.sender,
        text=args.subject,
        since=args.since,
        until=args.until,
        limit=min(MAX_PAGE, wanted) if wanted else MAX_PAGE,
    )
    shown = 0
    try:
        while True:
            page = store.search(query)
            for item in page.items:
                print(json.dumps(item.as_dict(), ensure_ascii=True) if args.json else _line(item))
                shown += 1
                if wanted is not None and shown >= wanted:
                    return EXIT_OK
            if page.next_before is None:
                return EXIT_OK
            query = replace(query, before=page.next_before)
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE


def run_show(args: argparse.Namespace) -> int:
    """Inspect one record safely, or dump its bytes with ``--raw``."""
    if args.raw and sys.stdout.isatty():
        _error("refusing to write a raw message to a terminal; redirect it to a file or a pipe")
        return EXIT_USAGE
    store = _open(args)
    if store is None:
        return EXIT_STORE
    try:
        record = store.get(args.id)
        raw = store.read_message(args.id)
    except QuarantineError as exc:
        _error(str(exc))
        return _code(exc)
    if args.raw:
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return EXIT_OK
    from milter.cli.quarantine_show import render, show_json

    if args.json:
        print(json.dumps(show_json(record, raw), ensure_ascii=True, indent=1))
    else:
        print(render(record, raw, None if args.full else 20_000))
    return EXIT_OK


async def _release_all(
    store: QuarantineBackend, args: argparse.Namespace, transform: ReleaseTransform | None
) -> int:
    host, port = args.relay or relay(args.settings.quarantine.relay)
    status = EXIT_OK
    for qid in args.ids:
        try:
            result = await release(
                store,
                qid,
                host,
                port,
                delete=args.delete,
                force=args.force,
                smtp_timeout=args.timeout,
                retries=max(0, args.retries),
                retry_delay=args.retry_delay,
                actor=actor(),
                transform=transform,
                false_positive=args.false_positive,
            )
        except QuarantineError as failure:
            held = isinstance(failure, ReleaseError)
            _error(f"{qid}: not released, still held: {failure}" if held else str(failure))
            status = max(status, _code(failure))
            continue
        done = "released and deleted" if result.deleted else "released"
        how = " with the warning banner" if result.edited else ""
        print(f"{qid}: {done}{how} via {result.relay}: {result.reply}")
    return status


def _banner(args: argparse.Namespace) -> ReleaseTransform | None:
    """The banner transform from the policy, or None for a false-positive release.

    Raises CliError when the policy does not load (nothing is released then)."""
    if args.false_positive:
        return None
    from milter.cli.common import load_or_fail
    from milter.cli.release_banner import banner_transform

    return banner_transform(load_or_fail(args.policy or args.settings.policy_dir))


def run_release(args: argparse.Namespace) -> int:
    """Re-inject each id; a failure leaves that message held and sets the exit code.

    A message held for impersonation keeps Tocsin's banner unless ``--false-positive``."""
    store = _open(args)
    if store is None:
        return EXIT_STORE
    from milter.cli.common import CliError

    try:
        transform = _banner(args)
    except CliError as exc:
        _error(f"{exc} (nothing released; --false-positive releases without the banner)")
        store.close()
        return EXIT_USAGE
    return asyncio.run(_release_all(store, args, transform))


def run_delete(args: argparse.Namespace) -> int:
    """Delete each id."""
    store = _open(args)
    if store is None:
        return EXIT_STORE
    status = EXIT_OK
    for qid in args.ids:
        try:
            store.delete(qid, actor=actor())
        except QuarantineError as exc:
            _error(str(exc))
            status = max(status, _code(exc))
            if not isinstance(exc, InvalidQuarantineId):
                _audit(store, "delete", qid, "failed", str(exc))
            continue
        _audit(store, "delete", qid, "ok", "")
        print(f"{qid}: deleted")
    return status


def run_purge(args: argparse.Namespace) -> int:
    """Delete records older than ``--older-than``."""
    store = _open(args)
    if store is None:
        return EXIT_STORE
    try:
        purged = store.purge(
            args.older_than, status=args.status, dry_run=args.dry_run, actor=actor()
        )
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE
    for qid in purged:
        print(f"{qid}: {'would be deleted' if args.dry_run else 'deleted'}")
    verb = "would be purged" if args.dry_run else "purged"
    print(f"{len(purged)} record(s) {verb}", file=sys.stderr)
    return EXIT_OK


def run_reindex(args: argparse.Namespace) -> int:
    """Drop and rebuild the index from the files (and the audit trail from audit.log)."""
    store = _open(args)
    if store is None:
        return EXIT_STORE
    if not isinstance(store, QuarantineStore):
        _error("reindex rebuilds a local directory's index; the PostgreSQL store has none")
        return EXIT_USAGE
    try:
        added, _dropped = store.reindex()
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE
    _audit(store, "reindex", None, "ok", f"{added} item(s)")
    print(f"index rebuilt: {added} item(s)")
    return EXIT_OK


def run_audit(args: argparse.Namespace) -> int:
    """Print the audit trail, newest first."""
    from milter.cli.quarantine_show import clean

    store = _open(args)
    if store is None:
        return EXIT_STORE
    try:
        entries = store.audit_trail(args.id, max(1, args.limit))
    except QuarantineError as exc:
        _error(str(exc))
        return _code(exc)
    for e in entries:
        if args.json:
            print(auditlog.entry_line(e).decode("utf-8").rstrip("\n"))
        else:
            print(
                "  ".join(
                    (
                        e.at.strftime("%Y-%m-%d %H:%M:%S"),
                        clean(e.actor),
                        e.action,
                        e.qid or "-",
                        e.result,
                        clean(e.detail[:200]),
                    )
                )
            )
    return EXIT_OK

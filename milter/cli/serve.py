"""``tocsin serve``: run the daemon, milter and/or SMTP filter (the README's main command)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from milter.frontends.service import MessageService
    from milter.frontends.settings import ServeSettings
    from milter.frontends.workers import Listener
    from milter.ops.daemon import DaemonExtras
    from milter.policy.store import PolicyStore
    from milter.quarantine.backend import QuarantineBackend

EXIT_OK, EXIT_USAGE, EXIT_BAD_POLICY, EXIT_CANNOT_START = 0, 2, 4, 5


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``serve`` sub-command."""
    parser = sub.add_parser("serve", help="run the daemon (milter and/or SMTP filter)")
    parser.add_argument(
        "--milter",
        metavar="SPEC",
        help="listen on inet:HOST:PORT or unix:/path (default inet:127.0.0.1:8894)",
    )
    parser.add_argument(
        "--smtp",
        metavar="HOST:PORT",
        help="run the SMTP filter on HOST:PORT (e.g. 127.0.0.1:10025); with --milter both run",
    )
    parser.add_argument(
        "--next-hop",
        metavar="HOST:PORT",
        help="where the SMTP filter relays (default 127.0.0.1:10026)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="settings file (YAML)")
    parser.add_argument("--policy", type=Path, metavar="DIR", help="policy directory")
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="DNS server (repeatable; default: the system's resolv.conf)",
    )
    parser.add_argument("--no-dns", action="store_true", help="skip DNS checks (testing only)")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes")
    parser.add_argument(
        "--quarantine-dir",
        type=Path,
        metavar="DIR",
        help="quarantine store, created 0700 if missing (default /var/lib/tocsin/quarantine)",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="info logs one line per message (default info)",
    )
    _add_ops_options(parser)
    parser.set_defaults(run=run_serve)


def _add_ops_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics", metavar="HOST:PORT", help="serve /metrics and /health (e.g. 127.0.0.1:9464)"
    )
    parser.add_argument("--log-format", choices=["text", "json"], help="key=value text or JSON")
    parser.add_argument("--log-target", choices=["stderr", "syslog"], help="default stderr")
    parser.add_argument("--pid-file", type=Path, metavar="FILE", help="for tocsin reload/status")
    parser.add_argument(
        "--no-watch", action="store_true", help="do not reload when a policy file changes"
    )


def run_serve(args: argparse.Namespace) -> int:
    """Load everything, bind, and serve until SIGTERM."""
    from milter.engine import prepare_policy
    from milter.frontends.listen import ListenError
    from milter.frontends.settings import load_settings
    from milter.frontends.workers import run_workers
    from milter.policy.errors import PolicyInvalid
    from milter.policy.store import PolicyStore

    try:
        settings = _apply_overrides(load_settings(args.config), args)
    except PolicyInvalid as exc:
        print(f"tocsin: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_BAD_POLICY
    except ValueError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(settings)
    log = logging.getLogger("tocsin")
    try:
        policies = PolicyStore(settings.policy_dir)
    except PolicyInvalid as exc:
        print(f"tocsin: invalid policy:\n{exc}", file=sys.stderr)
        return EXIT_BAD_POLICY
    if (refused := _probe_database(settings, log)) is not None:
        return refused
    quarantine_dir = settings.quarantine.directory
    listeners: list[Listener] = []
    try:
        if settings.quarantine.database is None:
            _prepare_quarantine(quarantine_dir)  # before bind: a failure leaves no socket
        listeners = _listeners(settings, log)
    except (ListenError, OSError) as exc:
        print(f"tocsin: cannot start: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    policies.prepare_with(prepare_policy)  # compiled once, before the workers fork
    log.info(
        "%d worker(s), policy %s, quarantine %s",
        settings.workers,
        ", ".join(policies.current.files),
        _quarantine_label(settings),
    )

    def make_service() -> MessageService:
        return _make_service(settings, policies, no_dns=args.no_dns)

    unix_paths = [_unix_path(listener.sock) for listener in listeners]
    try:
        extras = _start_extras(settings)
    except OSError as exc:
        print(f"tocsin: cannot start: {exc}", file=sys.stderr)
        for listener in listeners:
            listener.sock.close()
        return EXIT_CANNOT_START
    try:
        return run_workers(
            listeners, settings.workers, make_service, stall_seconds=settings.worker_stall_seconds
        )
    finally:
        if os.getpid() == _MAIN_PID:
            extras.close()
        for listener in listeners:
            listener.sock.close()
        for path in unix_paths:
            if path is not None and os.getpid() == _MAIN_PID:
                path.unlink(missing_ok=True)


def _listeners(settings: ServeSettings, log: logging.Logger) -> list[Listener]:
    """Bind every enabled front-end's socket (all before any worker starts)."""
    from milter.frontends.listen import ListenError, bind, parse_endpoint, parse_listen
    from milter.frontends.milter.server import MilterServer
    from milter.frontends.smtp.server import SmtpFilterServer
    from milter.frontends.workers import Listener

    listeners: list[Listener] = []
    if settings.milter.enabled:
        milter = settings.milter
        address = parse_listen(milter.listen)
        sock = bind(address, mode=int(milter.socket_mode, 8))
        listeners.append(Listener(sock, lambda service: MilterServer(milter, service)))
        log.info("tocsin serving milter on %s", address)
    if settings.smtp.enabled:
        smtp = settings.smtp
        address = parse_endpoint(smtp.listen)
        sock = bind(address)
        listeners.append(Listener(sock, lambda service: SmtpFilterServer(smtp, service)))
        log.info("tocsin serving SMTP filter on %s, next hop %s", address, smtp.next_hop)
    if not listeners:
        raise ListenError("no front-end enabled (use --milter or --smtp)")
    return listeners


def _unix_path(sock: socket.socket) -> Path | None:
    return Path(sock.getsockname()) if sock.family == socket.AF_UNIX else None


_MAIN_PID = os.getpid()


def _apply_overrides(settings: ServeSettings, args: argparse.Namespace) -> ServeSettings:
    milter: dict[str, object] = {}
    smtp: dict[str, object] = {}
    top: dict[str, object] = {}
    if args.milter or args.smtp:  # named on the command line: exactly those run
        milter["enabled"] = bool(args.milter)
        smtp["enabled"] = bool(args.smtp)
    if args.milter:
        milter["listen"] = args.milter
    if args.smtp:
        smtp["listen"] = args.smtp
    if args.next_hop:
        smtp["next_hop"] = args.next_hop
    if args.workers is not None:
        milter["workers"] = args.workers
        smtp["workers"] = args.workers
    if args.policy is not None:
        top["policy_dir"] = args.policy
    if args.nameserver:
        top["nameservers"] = tuple(args.nameserver)
    if args.log_level:
        top["log_level"] = args.log_level
    _ops_overrides(settings, args, top)
    if args.quarantine_dir is not None:
        top["quarantine"] = settings.quarantine.model_copy(
            update={"directory": args.quarantine_dir}
        )
    data = settings.model_dump()
    data.update(top)
    data["milter"] = {**data["milter"], **milter}
    data["smtp"] = {**data["smtp"], **smtp}
    try:
        return type(settings).model_validate(data)
    except ValidationError as exc:
        from milter.policy.loader import error_message, loc_to_path

        problems = [f"{loc_to_path(e['loc'])}: {error_message(e)}" for e in exc.errors()]
        raise ValueError("bad option: " + "; ".join(problems)) from None


def _ops_overrides(
    settings: ServeSettings, args: argparse.Namespace, top: dict[str, object]
) -> None:
    log = {
        key: value
        for key, value in (("format", args.log_format), ("target", args.log_target))
        if value is not None
    }
    if log:
        top["log"] = settings.log.model_copy(update=log)
    if args.metrics is not None:
        top["metrics"] = {"listen": args.metrics}
    if args.pid_file is not None:
        top["pid_file"] = args.pid_file
    if args.no_watch:
        top["watch_policy"] = False


def _configure_logging(settings: ServeSettings) -> None:
    from milter.ops.logs import configure_logging

    log = settings.log
    configure_logging(settings.log_level, log.format, log.target, log.syslog_address)
    # aiosmtpd logs every SMTP command at INFO: only its warnings belong in our log
    level = logging.getLevelName(settings.log_level.upper())
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, level))


def _start_extras(settings: ServeSettings) -> DaemonExtras:
    from milter.ops.daemon import start_extras

    watch = settings.policy_dir if settings.watch_policy else None
    return start_extras(
        metrics_listen=settings.metrics.listen, pid_file=settings.pid_file, watch_dir=watch
    )


def _prepare_quarantine(directory: Path) -> None:
    from milter.ops.preflight import prepare_quarantine_dir

    prepare_quarantine_dir(directory)


def _open_quarantine(settings: ServeSettings, *, connect_now: bool = False) -> QuarantineBackend:
    from milter.quarantine.postgres_config import open_store

    q = settings.quarantine
    return open_store(
        q.directory,
        q.database,
        password_file=q.database_password_file,
        pool_size=q.database_pool_size,
        timeout=q.database_timeout_seconds,
        gateway=q.gateway,
        connect_now=connect_now,
    )


def _quarantine_label(settings: ServeSettings) -> str:
    if settings.quarantine.database is None:
        return str(settings.quarantine.directory)
    from milter.quarantine.postgres_config import redact

    return redact(settings.quarantine.database)


def _probe_database(settings: ServeSettings, log: logging.Logger) -> int | None:
    """With a shared quarantine, say at start-up whether it is usable. A missing client
    library stops the start (exit code returned); an unreachable or unmigrated database
    does not: until it is usable, quarantined mail is answered 4xx and the pools retry."""
    if settings.quarantine.database is None:
        return None
    from milter.quarantine.errors import QuarantineError

    try:
        store = _open_quarantine(settings)
    except QuarantineError as exc:
        print(f"tocsin: cannot start: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        store.schema_version()
    except QuarantineError as exc:
        log.error("quarantine database not usable yet (mail to quarantine gets 4xx): %s", exc)
    finally:
        store.close()  # before the workers fork their own pools
    return None


def _make_service(
    settings: ServeSettings, policies: PolicyStore, *, no_dns: bool
) -> MessageService:
    from milter.frontends.service import MessageService
    from milter.mime.spool import SpoolConfig

    resolver = None
    if not no_dns:
        from milter.dns.stub import DnsResolver

        resolver = DnsResolver(
            list(settings.nameservers) or None, timeout=settings.dns_timeout_seconds
        )
    spool = settings.spool
    return MessageService(
        policies,
        resolver=resolver,
        quarantine=_open_quarantine(settings, connect_now=True),
        spool=SpoolConfig(spool.directory, spool.threshold_bytes, spool.memory_bytes),
        large_scans=spool.large_scans,
    )

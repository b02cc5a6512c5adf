"""``tocsin scan``: the engine over message files, offline unless ``--dns``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from milter.cli.common import (
    EXIT_INPUT,
    EXIT_OK,
    POLICY_HELP,
    SubParsers,
    add_dns_options,
    load_or_fail,
)
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition

log = logging.getLogger(__name__)

# ``--exit-code`` (like ``spamc -c``): the harshest verdict over all files, above the
# error codes (1-7) so a script can tell "quarantine" from "could not read the file".
VERDICT_EXIT = {
    Disposition.ACCEPT: 0,
    Disposition.TAG: 10,
    Disposition.QUARANTINE: 11,
    Disposition.REJECT: 12,
    Disposition.TEMPFAIL: 13,
}
OFFLINE_NOTE = (
    "tocsin: hors ligne : l'authentification (SPF, DKIM, DMARC, ARC) n'a pas été évaluée, "
    "le milter en service peut décider autrement ; ajoutez --dns.\n"
    "tocsin: offline: authentication (SPF, DKIM, DMARC, ARC) was not evaluated, so the "
    "live milter may decide differently; add --dns to evaluate it."
)


def add_scan_parser(sub: SubParsers) -> None:
    """Register the ``scan`` sub-command."""
    parser = sub.add_parser(
        "scan",
        help="scan message files and print the verdicts",
        description="Scan message files and print the verdicts. Offline unless --dns: "
        "authentication (SPF, DKIM, DMARC, ARC) is then not evaluated.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="message files")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--policy", type=Path, default=None, metavar="DIR", help=POLICY_HELP)
    add_dns_options(parser)
    parser.add_argument("--client-ip", default=None, metavar="IP", help="SMTP client address")
    parser.add_argument("--helo", default=None, metavar="NAME", help="HELO/EHLO name")
    parser.add_argument("--mail-from", default=None, metavar="ADDR", help="envelope sender")
    parser.add_argument(
        "--rcpt", action="append", default=[], metavar="ADDR", help="recipient (repeatable)"
    )
    parser.add_argument(
        "--write",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each message as it would be delivered into DIR (created if needed)",
    )
    parser.add_argument(
        "--exit-code",
        action="store_true",
        help="exit with the harshest verdict: 0 accept, 10 tag, 11 quarantine, 12 reject, "
        "13 tempfail (an unreadable file still exits 3)",
    )
    parser.set_defaults(run=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    """Scan every file; the exit code follows docs/cli.md."""
    return asyncio.run(_scan_files(args))


def _make_resolver(args: argparse.Namespace) -> object | None:
    if not args.dns:
        return None
    from milter.cli.dns import make_resolver

    return make_resolver(args.nameserver)


async def _scan_files(args: argparse.Namespace) -> int:
    from milter.actions.apply import apply_plan
    from milter.cli.output import print_scan_human, scan_json
    from milter.engine import scan

    policy = load_or_fail(args.policy)
    resolver = _make_resolver(args)
    if resolver is None:
        print(OFFLINE_NOTE, file=sys.stderr)
    envelope = Envelope(
        client_ip=args.client_ip, helo=args.helo, mail_from=args.mail_from, rcpts=args.rcpt
    )
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
    status, harshest = EXIT_OK, EXIT_OK
    for path in args.files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            print(f"tocsin: {path}: {exc.strerror or exc}", file=sys.stderr)
            status = EXIT_INPUT
            continue
        try:
            result = await scan(raw, envelope, policy, resolver)  # type: ignore[arg-type]
            written = apply_plan(raw, result.plan) if args.write is not None else b""
        except Exception as exc:  # one bad file must not cost the answers for the others
            log.debug("%s: scan failed", path, exc_info=True)  # shown with --debug only
            _scan_failed(path, exc, as_json=args.json)
            status = EXIT_INPUT
            continue
        if args.json:
            obj = scan_json(str(path), result, offline=resolver is None)
            print(_utf8(json.dumps(obj, ensure_ascii=False)))
        else:
            print_scan_human(str(path), result, offline=resolver is None)
        harshest = max(harshest, VERDICT_EXIT[result.verdict.disposition])
        if args.write is not None:
            (args.write / path.name).write_bytes(written)
    if status == EXIT_OK and args.exit_code:
        return harshest
    return status


def _utf8(text: str) -> str:
    """``text`` with lone surrogates (bytes of the message that were not UTF-8) replaced,
    so the output is always valid UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _scan_failed(path: Path, exc: Exception, *, as_json: bool) -> None:
    """Still one answer for this file: a JSON object with the error, or a clean line."""
    why = f"{type(exc).__name__}: {exc}"[:300]
    if as_json:
        print(_utf8(json.dumps({"file": str(path), "error": why}, ensure_ascii=False)))
    else:
        print(_utf8(f"tocsin: {path}: could not scan: {why}"), file=sys.stderr)

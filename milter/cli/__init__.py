"""The ``tocsin`` command line. Contract documented in docs/cli.md; keep it stable.

Exit codes: 0 success; 1 ``policy check`` found errors; 2 usage error; 3 an input could
not be read; 4 the policy is invalid (other commands).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from milter import __version__
from milter.actions.apply import apply_plan
from milter.cli.lookalike import add_lookalike_parser
from milter.cli.output import print_scan_human, scan_json
from milter.cli.serve import add_serve_parser
from milter.engine import prepare_policy, scan
from milter.model.envelope import Envelope
from milter.policy.errors import PolicyInvalid
from milter.policy.loader import load_policy
from milter.policy.model import Policy

EXIT_OK, EXIT_POLICY_ERRORS, EXIT_USAGE, EXIT_INPUT, EXIT_BAD_POLICY = 0, 1, 2, 3, 4


class CliError(Exception):
    """A one-line error for the user, with the exit code to use."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="tocsin", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"tocsin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_scan(sub)
    add_lookalike_parser(sub)
    add_serve_parser(sub)
    for register in _extra_subcommands():
        register(sub)
    policy = sub.add_parser("policy", help="check or show the policy").add_subparsers(
        dest="policy_command", required=True
    )
    check = policy.add_parser("check", help="validate a policy directory")
    check.add_argument("directory", nargs="?", type=Path, default=None)
    show = policy.add_parser("show", help="print the effective policy (defaults + overrides)")
    show.add_argument("--policy", type=Path, default=None)
    return parser


SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _extra_subcommands() -> list[Callable[[SubParsers], None]]:
    """Sub-commands living in their own modules.

    Each registers its parser and sets ``run`` (``args -> exit code``) as a default, so
    ``main`` needs no knowledge of them.
    """
    from milter.cli.quarantine import add_quarantine_parser

    return [add_quarantine_parser]


def _add_scan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan_p = sub.add_parser("scan", help="scan message files and print the verdicts")
    scan_p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    scan_p.add_argument("--json", action="store_true", help="one JSON object per line")
    scan_p.add_argument("--policy", type=Path, default=None, metavar="DIR")
    scan_p.add_argument("--dns", action="store_true", help="query DNS (off by default)")
    scan_p.add_argument("--nameserver", action="append", default=[], metavar="HOST[:PORT]")
    scan_p.add_argument("--client-ip", default=None, metavar="IP")
    scan_p.add_argument("--helo", default=None, metavar="NAME")
    scan_p.add_argument("--mail-from", default=None, metavar="ADDR")
    scan_p.add_argument("--rcpt", action="append", default=[], metavar="ADDR")
    scan_p.add_argument("--write", type=Path, default=None, metavar="DIR")


def load_or_fail(directory: Path | None) -> Policy:
    """Load the policy or raise CliError listing every error."""
    try:
        policy = load_policy(directory)
    except PolicyInvalid as exc:
        raise CliError(f"invalid policy:\n{exc}", EXIT_BAD_POLICY) from None
    prepare_policy(policy)
    return policy


def _make_resolver(args: argparse.Namespace) -> object | None:
    if not args.dns:
        return None
    from milter.cli.dns import make_resolver

    return make_resolver(args.nameserver)


async def _scan_files(args: argparse.Namespace) -> int:
    policy = load_or_fail(args.policy)
    resolver = _make_resolver(args)
    envelope = Envelope(
        client_ip=args.client_ip, helo=args.helo, mail_from=args.mail_from, rcpts=args.rcpt
    )
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
    status = EXIT_OK
    for path in args.files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            print(f"tocsin: {path}: {exc.strerror or exc}", file=sys.stderr)
            status = EXIT_INPUT
            continue
        result = await scan(raw, envelope, policy, resolver)  # type: ignore[arg-type]
        if args.json:
            print(json.dumps(scan_json(str(path), result), ensure_ascii=False))
        else:
            print_scan_human(str(path), result)
        if args.write is not None:
            (args.write / path.name).write_bytes(apply_plan(raw, result.plan))
    return status


def _policy_check(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.directory)
    except PolicyInvalid as exc:
        for error in exc.errors:
            print(error)
        print(f"tocsin: {len(exc.errors)} error(s)", file=sys.stderr)
        return EXIT_POLICY_ERRORS
    print(f"policy OK: {len(policy.brands)} brands, {len(policy.document.rules)} rules")
    return EXIT_OK


def _policy_show(args: argparse.Namespace) -> int:
    import yaml

    policy = load_or_fail(args.policy)
    data = policy.document.model_dump(mode="json")
    print("# effective policy from: " + ", ".join(policy.files))
    print(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), end="")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tocsin`` command."""
    args = build_parser().parse_args(argv)
    try:
        run = getattr(args, "run", None)
        if run is not None:
            return int(run(args))
        if args.command == "scan":
            return asyncio.run(_scan_files(args))
        if args.command == "lookalike":
            from milter.cli.lookalike import run_lookalike

            return run_lookalike(args, load_or_fail(args.policy))
        if args.policy_command == "check":
            return _policy_check(args)
        return _policy_show(args)
    except CliError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130

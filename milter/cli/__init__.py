"""The ``tocsin`` command: an inline mail filter against impersonation of French public services.

Every sub-command lives in its own module and registers its parser with a ``run``
default (``args -> exit code``); ``main`` turns ordinary failures into one line on
stderr and an exit code (docs/cli.md), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from milter import __version__
from milter.cli.common import EXIT_BROKEN_PIPE, CliError, SubParsers, load_or_fail
from milter.cli.lookalike import add_lookalike_parser
from milter.cli.policy import add_policy_parser
from milter.cli.replay import add_replay_parser
from milter.cli.scan import add_scan_parser
from milter.cli.serve import add_serve_parser

DESCRIPTION = (
    "Tocsin: inline mail filter (milter) that stops impersonation of French public "
    "services. Filtre de messagerie contre l'usurpation des services publics français."
)
EPILOG = "Exit codes and JSON formats: docs/cli.md; `tocsin manpage` prints the manual page."


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="tocsin", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"tocsin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_scan_parser(sub)
    add_lookalike_parser(sub)
    add_serve_parser(sub)
    add_replay_parser(sub)
    for register in _extra_subcommands():
        register(sub)
    add_policy_parser(sub)
    manpage = sub.add_parser(
        "manpage", help="print the manual page (roff): tocsin manpage | man -l -"
    )
    manpage.set_defaults(run=_print_manpage)
    return parser


def _extra_subcommands() -> list[Callable[[SubParsers], None]]:
    """Sub-commands imported lazily (their modules pull in heavier dependencies)."""
    from milter.cli.control import add_control_parsers
    from milter.cli.quarantine import add_quarantine_parser
    from milter.cli.review import add_review_parser
    from milter.cli.stats import add_stats_parser

    return [add_quarantine_parser, add_review_parser, add_control_parsers, add_stats_parser]


def _print_manpage(args: argparse.Namespace) -> int:
    from milter.cli.manpage import render_manpage

    print(render_manpage(build_parser()), end="")
    return 0


def _run_lookalike(args: argparse.Namespace) -> int:
    from milter.cli.lookalike import run_lookalike

    return run_lookalike(args, load_or_fail(args.policy))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tocsin`` command."""
    args = build_parser().parse_args(argv)
    run = getattr(args, "run", None) or _run_lookalike
    try:
        code = int(run(args))
        sys.stdout.flush()
    except CliError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tocsin quarantine list | head -1`): stop quietly, and
        # point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code

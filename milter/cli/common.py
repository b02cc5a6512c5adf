"""What every ``tocsin`` sub-command shares: exit codes, the one-line error, policy loading."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from milter.policy.model import Policy

EXIT_OK, EXIT_POLICY_ERRORS, EXIT_USAGE, EXIT_INPUT, EXIT_BAD_POLICY = 0, 1, 2, 3, 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

POLICY_HELP = "admin policy directory merged over the shipped defaults (default: defaults only)"


class CliError(Exception):
    """A one-line error for the user, with the exit code to use."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def load_or_fail(directory: Path | None) -> Policy:
    """Load the policy or raise CliError listing every error.

    The engine and the policy loader are imported here, not at module level, so that
    commands which never load a policy (``tocsin quarantine list``, ``tocsin status``)
    start without importing the whole engine."""
    from milter.engine import prepare_policy
    from milter.policy.errors import PolicyInvalid
    from milter.policy.loader import load_policy

    try:
        policy = load_policy(directory)
    except PolicyInvalid as exc:
        raise CliError(f"invalid policy:\n{exc}", EXIT_BAD_POLICY) from None
    prepare_policy(policy)  # compiled once, before the first message
    return policy


def add_dns_options(parser: argparse.ArgumentParser) -> None:
    """``--dns`` and ``--nameserver`` for the commands that scan offline by default."""
    parser.add_argument(
        "--dns", action="store_true", help="query DNS and evaluate authentication (off by default)"
    )
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="DNS server for --dns (repeatable; default: the system's)",
    )

"""``tocsin policy check`` and ``tocsin policy show``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from milter.cli.common import (
    EXIT_OK,
    EXIT_POLICY_ERRORS,
    POLICY_HELP,
    SubParsers,
    load_or_fail,
)


def add_policy_parser(sub: SubParsers) -> None:
    """Register ``policy check`` and ``policy show``."""
    policy = sub.add_parser("policy", help="check or show the policy").add_subparsers(
        dest="policy_command", required=True
    )
    check = policy.add_parser("check", help="validate a policy directory")
    check.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=None,
        metavar="DIR",
        help="policy directory to validate with the defaults (default: the defaults alone)",
    )
    check.set_defaults(run=policy_check)
    show = policy.add_parser("show", help="print the effective policy (defaults + overrides)")
    show.add_argument("--policy", type=Path, default=None, metavar="DIR", help=POLICY_HELP)
    show.set_defaults(run=policy_show)


def policy_check(args: argparse.Namespace) -> int:
    """Print every error as file:line: key: message (exit 1), or a summary (exit 0)."""
    from milter.policy.errors import PolicyInvalid
    from milter.policy.loader import load_policy

    try:
        policy = load_policy(args.directory)
    except PolicyInvalid as exc:
        for error in exc.errors:
            print(error)
        print(f"tocsin: {len(exc.errors)} error(s)", file=sys.stderr)
        return EXIT_POLICY_ERRORS
    print(f"policy OK: {len(policy.brands)} brands, {len(policy.document.rules)} rules")
    return EXIT_OK


def policy_show(args: argparse.Namespace) -> int:
    """Print the effective policy as YAML, like ``postconf -n``."""
    import yaml

    policy = load_or_fail(args.policy)
    data = policy.document.model_dump(mode="json")
    print("# effective policy from: " + ", ".join(policy.files))
    print(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), end="")
    return EXIT_OK

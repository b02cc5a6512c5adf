"""``tocsin lookalike``: which brand a domain imitates, answered by the engine's own code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milter.policy.model import Policy


def add_lookalike_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``lookalike`` sub-command."""
    parser = sub.add_parser("lookalike", help="test domains against the protected brands")
    parser.add_argument("domains", nargs="+", metavar="DOMAIN", help="domains, or - for stdin")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--policy", type=Path, default=None, metavar="DIR", help="policy directory (brands)"
    )


def classify(domain: str, policy: Policy) -> dict[str, Any]:
    """The lookalike answer for one domain, as the JSON contract shapes it."""
    from milter.links.registry import brand_index

    name = domain.strip().lower().rstrip(".")
    hit = brand_index(policy).classify(name)
    if hit is None:
        return {"domain": name, "brand": None, "imitates": None, "technique": None}
    return {
        "domain": name,
        "brand": hit.brand_id,
        "imitates": hit.official,
        "technique": hit.technique,
        "evidence": hit.evidence,
    }


def _domains(args: argparse.Namespace) -> list[str]:
    if args.domains == ["-"]:
        return [line.strip() for line in sys.stdin if line.strip()]
    return [d for d in args.domains if d.strip()]


def run_lookalike(args: argparse.Namespace, policy: Policy) -> int:
    """Print one answer per domain; exit 0."""
    for domain in _domains(args):
        answer = classify(domain, policy)
        if args.json:
            print(json.dumps(answer, ensure_ascii=False))
        elif answer["brand"] is None:
            print(f"{answer['domain']}: no protected brand")
        else:
            print(
                f"{answer['domain']}: {answer['brand']} ({answer['technique']}, "
                f"imitates {answer['imitates']})"
            )
    return 0

"""Lookalike benchmark over the shared domain corpus (recall, false positives, speed).

Run from the repository root::

    .venv/bin/python benchmarks/lookalike.py [--corpus ../shared/corpus/domains] [--misses N]
        [--policy DIR]

The brands are the policy's (the shipped defaults unless ``--policy`` adds a directory),
indexed by the same function the engine and ``tocsin lookalike`` use.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from milter.links.lookalike import BrandIndex  # noqa: E402
from milter.links.registry import brand_index  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "domains"


def load_permutations(corpus: Path) -> list[tuple[str, str, str]]:
    """(target, fuzzer, domain) rows of lookalike-permutations.tsv."""
    rows = []
    for line in (
        (corpus / "lookalike-permutations.tsv").read_text(encoding="utf-8").splitlines()[1:]
    ):
        target, fuzzer, domain = line.split("\t")
        rows.append((target, fuzzer, domain))
    return rows


def load_phishing(corpus: Path) -> list[tuple[str, str]]:
    """(brand, domain) rows of phishing-fr-brands.tsv."""
    lines = (corpus / "phishing-fr-brands.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(b, d) for b, d in (line.split("\t") for line in lines if line)]


def load_list(path: Path) -> list[str]:
    """Non-empty lines of a one-domain-per-line file."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _flagged(index: BrandIndex, domain: str) -> bool:
    result = index.classify(domain)
    return result is not None and result.is_lookalike


def report_permutations(index: BrandIndex, rows: list[tuple[str, str, str]], misses: int) -> None:
    by_fuzzer: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    techniques: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    missed = []
    for _target, fuzzer, domain in rows:
        result = index.classify(domain)
        hit = result is not None and result.is_lookalike
        by_fuzzer[fuzzer][0] += hit
        by_fuzzer[fuzzer][1] += 1
        techniques[fuzzer][result.technique if result else "-"] += 1
        if not hit:
            missed.append(f"{fuzzer}:{domain}")
    total_hit = sum(h for h, _ in by_fuzzer.values())
    print(f"permutations: recall {total_hit}/{len(rows)} = {100 * total_hit / len(rows):.2f} %")
    for fuzzer, (hit, count) in sorted(by_fuzzer.items(), key=lambda kv: -kv[1][1]):
        seen = ", ".join(f"{t} {n}" for t, n in techniques[fuzzer].most_common(4))
        print(f"  {fuzzer:14} {hit:5}/{count:<5} {100 * hit / count:6.2f} %   as: {seen}")
    if missed:
        print(f"  missed ({len(missed)}): {' '.join(missed[:misses])}")


def report_phishing(index: BrandIndex, rows: list[tuple[str, str]], misses: int) -> None:
    hits = [d for _, d in rows if _flagged(index, d)]
    missed = [f"{b}:{d}" for b, d in rows if not _flagged(index, d)]
    pct = 100 * len(hits) / len(rows)
    print(f"real phishing domains: recall {len(hits)}/{len(rows)} = {pct:.2f} %")
    if missed:
        print(f"  missed: {' '.join(missed[:misses])}")


def report_legit(index: BrandIndex, name: str, domains: list[str], misses: int) -> None:
    flagged = [
        r.evidence for d in domains if (r := index.classify(d)) is not None and r.is_lookalike
    ]
    pct = 100 * len(flagged) / len(domains)
    print(f"false positives on {name}: {len(flagged)}/{len(domains)} = {pct:.3f} %")
    for evidence in flagged[:misses]:
        print(f"  {evidence}")


def report_official(index: BrandIndex) -> None:
    bad = []
    for brand in index.brands:
        for domain in brand.domains:
            for host in (domain, "www." + domain, "connexion." + domain):
                result = index.classify(host)
                if result is None or result.technique != "official":
                    bad.append(host)
    print(f"brands' own domains not classified official: {len(bad)} {' '.join(bad)}")


def report_speed(index: BrandIndex, domains: list[str], rounds: int = 5) -> None:
    """Best of ``rounds`` passes, cache cleared before each.

    CPU time of this process is the headline (robust to other jobs sharing the machine);
    wall time is shown alongside.
    """
    best_cpu = best_wall = float("inf")
    for _ in range(rounds):
        index.cache_clear()
        wall, cpu = time.perf_counter(), time.process_time()
        for domain in domains:
            index.classify(domain)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    n = len(domains)
    print(
        f"speed: {n} domains, cold cache, 1 thread: {n / best_cpu:,.0f} domains/s CPU time"
        f" ({best_cpu:.3f} s), {n / best_wall:,.0f} domains/s wall ({best_wall:.3f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run every report; return 0."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--policy", type=Path, default=None, help="policy directory (default: shipped policy)"
    )
    parser.add_argument("--misses", type=int, default=20, help="how many misses/FPs to print")
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    policy = load_policy(args.policy)
    index = brand_index(policy)  # the engine's own index of the policy's brands
    source = f"policy {args.policy} over the shipped one" if args.policy else "shipped policy"
    print(f"brands ({source}): {', '.join(b.brand_id for b in index.brands)}")
    perms = load_permutations(corpus)
    phishing = load_phishing(corpus)
    top = load_list(corpus / "legit-top-sites.txt")
    public = load_list(corpus / "legit-fr-public-sector.txt")
    report_permutations(index, perms, args.misses)
    report_phishing(index, phishing, args.misses)
    report_legit(index, "legit-top-sites.txt", top, args.misses)
    report_legit(index, "legit-fr-public-sector.txt", public, args.misses)
    report_official(index)
    everything = [d for _, _, d in perms] + [d for _, d in phishing] + top + public
    report_speed(index, everything)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

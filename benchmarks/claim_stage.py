"""The brand claim and the checks that read folded text, alone, message by message.

The stage of ``scan()`` that folds the body to its phrase key and searches it: the claim
(``find_claim``) and the brand, sender, phrases, phones and canvassing checks, over the
load benchmark's corpus parsed once beforehand (no DNS: these checks ask none). Each
message starts with empty fold caches, as a new message does in the server.

``--mode time``: median CPU ms of the stage per kind (``time.thread_time``, ``--rounds``
passes). ``--mode callgrind``: one pass inside ``functools.reduce``, so that
``valgrind --tool=callgrind --toggle-collect=functools_reduce`` counts the stage's
instructions only (deterministic whatever the machine's load; set ``PYTHONHASHSEED``).
``--mode dump``: the claim and every finding, one line per message, to compare two trees.

Usage: PYTHONHASHSEED=0 valgrind --tool=callgrind --toggle-collect=functools_reduce
       .venv/bin/python benchmarks/claim_stage.py --mode callgrind [--kinds brand,spoof]
       [--corpus /tmp/corpus.pkl] (generating the corpus under valgrind takes minutes)
"""

from __future__ import annotations

import argparse
import functools
import pickle
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.corpus import generate, make_keys  # noqa: E402
from benchmarks.harness.inprocess import envelope_of  # noqa: E402
from milter.checks.base import CheckContext  # noqa: E402
from milter.checks.brand import BrandClaimCheck  # noqa: E402
from milter.checks.canvassing import CanvassingCheck  # noqa: E402
from milter.checks.claim import find_claim  # noqa: E402
from milter.checks.compiled import prepare  # noqa: E402
from milter.checks.phones import PhonesCheck  # noqa: E402
from milter.checks.phrases import PhrasesCheck  # noqa: E402
from milter.checks.sender import SenderCheck  # noqa: E402
from milter.mime.parse import MimeLimits, MimeView, parse_message  # noqa: E402
from milter.model.envelope import Envelope  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402
from milter.text import confusables  # noqa: E402

CHECKS = (BrandClaimCheck(), SenderCheck(), PhrasesCheck(), PhonesCheck(), CanvassingCheck())


def _finish(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never awaits (these checks are CPU only) to its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("a CPU-only check awaited")


def _stage(mime: MimeView, envelope: Envelope, policy: Any) -> list[Any]:
    """The claim and every check's findings for one message, from empty fold caches."""
    confusables._folded.cache_clear()
    confusables._WORDS_OF_KEY.clear()
    claim = find_claim(mime, policy)
    ctx = CheckContext(envelope, mime, policy, claim, None)
    return [claim, *(list(_finish(check.run(ctx))) for check in CHECKS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--kinds", default="", help="comma-separated kinds (default: all)")
    parser.add_argument("--mode", choices=("time", "callgrind", "dump"), default="time")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", default="/tmp/speedbench/keys")
    parser.add_argument(
        "--corpus", default="", help="pickle of the generated corpus: read, else written"
    )
    args = parser.parse_args()
    kinds = set(filter(None, args.kinds.split(",")))
    policy = load_policy(None)
    prepare(policy)
    confusables.prepare()
    limits = policy.document.limits
    mime_limits = MimeLimits(
        max_parts=limits.max_parts, max_depth=limits.max_depth, max_headers=limits.max_headers
    )
    corpus = Path(args.corpus) if args.corpus else None
    if corpus is not None and corpus.exists():
        generated = pickle.loads(corpus.read_bytes())
    else:
        generated = generate(args.messages, keys=make_keys(Path(args.keys)))
        if corpus is not None:
            corpus.write_bytes(pickle.dumps(generated))
    messages = [
        (m.kind, parse_message(m.raw, mime_limits), envelope_of(m))
        for m in generated
        if not kinds or m.kind in kinds
    ]
    if args.mode == "dump":
        for kind, mime, envelope in messages:
            print(kind, repr(_stage(mime, envelope, policy)))
    elif args.mode == "callgrind":
        functools.reduce(lambda _, m: _stage(m[1], m[2], policy), messages, None)
    else:
        table: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.rounds):
            for kind, mime, envelope in messages:
                start = time.thread_time()
                _stage(mime, envelope, policy)
                table[kind].append((time.thread_time() - start) * 1000)
        every = [v for values in table.values() for v in values]
        for kind in sorted(table):
            count = len(table[kind]) // args.rounds
            print(f"{kind:11} {count:4} {statistics.median(table[kind]):.3f}")
        print(f"{'all':11} {len(every) // args.rounds:4} {statistics.median(every):.3f}")
        print(f"{'all (mean)':11} {len(every) // args.rounds:4} {statistics.mean(every):.3f}")


if __name__ == "__main__":
    main()

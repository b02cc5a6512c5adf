"""How long listing takes with N held messages (default 100,000) in the local store.

    .venv/bin/python benchmarks/quarantine_list.py [--count 100000] [--dir DIR]

Seeds N real records (message + metadata files, as ``put`` writes them, but without
fsync so seeding takes minutes, not hours), then times: rebuilding the SQLite index from
the files (what happens when ``index.sqlite3`` is lost), opening the store (reconcile),
the first list page, a page deep in the list (keyset), filtered pages, and the
``tocsin quarantine list --limit 50`` command end to end. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from milter.model.envelope import Envelope  # noqa: E402
from milter.quarantine.backend import ListQuery  # noqa: E402
from milter.quarantine.files import FileStore  # noqa: E402
from milter.quarantine.store import QuarantineStore  # noqa: E402

BRANDS = ("cpf", "ameli", "impots", "franceconnect", "ants", "caf")
DOMAINS = ("mairie.fr", "ville.fr", "hopital.fr", "ecole.fr", "cabinet.fr")


def _verdict(rng: random.Random) -> dict[str, Any]:
    brand = rng.choice(BRANDS)
    return {
        "verdict": "quarantine",
        "brand": brand,
        "score": float(rng.randint(8, 40)),
        "reasons": [{"rule": "brand-impersonation", "disposition": "quarantine", "text": "x"}],
        "findings": [
            {"code": "DISPLAY_NAME_BRAND", "check": "sender", "severity": "high", "text": "x"},
            {"code": "LINK_LOOKALIKE", "check": "links", "severity": "critical", "text": "x"},
        ],
        "auth": [],
    }


def seed(directory: Path, count: int) -> None:
    """``count`` records spread over the last 30 days (no fsync, no index)."""
    rng = random.Random(7)
    files = FileStore(directory)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / count
    with mock.patch("os.fsync"):
        for n in range(count):
            rcpt = f"agent{rng.randint(1, 500)}@{rng.choice(DOMAINS)}"
            raw = (
                f"From: Service {n} <noreply{n}@lure{n % 997}.example>\r\n"
                f"Subject: Votre dossier {n} expire\r\n\r\nBonjour {n}\r\n"
            ).encode()
            env = Envelope(mail_from=f"b{n}@lure{n % 997}.example", rcpts=(rcpt,))
            files.put_record(raw, env, _verdict(rng), received_at=start + step * n)


def timed(label: str, action: Callable[[], Any], repeat: int = 5) -> Any:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - began)
    print(f"{label:58s} {best * 1000:9.1f} ms (best of {repeat})")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="reuse or keep this directory")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="tocsin-list-bench-")) / "q"
    if not directory.exists() or not any(directory.glob("*.json")):
        began = time.perf_counter()
        seed(directory, args.count)
        print(f"seeded {args.count} records in {time.perf_counter() - began:.0f} s: {directory}")
    index = directory / "index.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    store = timed(
        "rebuild the index from the files (index lost)", lambda: QuarantineStore(directory), 1
    )
    print(f"items indexed: {store.search(ListQuery(limit=1)).total}")
    timed("open the store (reconcile files with index)", lambda: QuarantineStore(directory))
    first = timed("first page of 50, newest first, with total", lambda: store.search(ListQuery()))
    cursor = first.items[-1].id
    for _ in range(1000):  # walk 1,000 pages in: 50,000 items deep
        cursor = store.search(ListQuery(before=cursor)).next_before or cursor
    timed("page 1,001 (keyset, 50,000 items deep)", lambda: store.search(ListQuery(before=cursor)))
    timed("brand=ameli, first page + total", lambda: store.search(ListQuery(brand="ameli")))
    timed(
        "recipient=@ville.fr, first page + total",
        lambda: store.search(ListQuery(recipient="@ville.fr")),
    )
    timed("state=held, since 7 days", lambda: store.search(
        ListQuery(state="held", since=datetime.now(UTC) - timedelta(days=7))))  # fmt: skip
    timed("subject contains 'dossier 4242'", lambda: store.search(ListQuery(text="dossier 4242")))
    command = [
        sys.executable,
        "-m",
        "milter",
        "quarantine",
        "list",
        "--limit",
        "50",
        "--dir",
        str(directory),
    ]
    timed(
        "tocsin quarantine list --limit 50 (whole command)",
        lambda: subprocess.run(command, cwd=ROOT, capture_output=True, check=True, env=os.environ),
        3,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

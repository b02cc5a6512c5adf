"""Several worker processes put() into one store at once: no collision, no loss."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from milter.model.envelope import Envelope
from milter.quarantine import QuarantineStore

WORKERS = 6
PER_WORKER = 40


def _worker(directory: str, worker: int, start: object, out: object) -> None:
    store = QuarantineStore(Path(directory))
    start.wait()  # type: ignore[attr-defined]
    ids = []
    for n in range(PER_WORKER):
        raw = f"Subject: w{worker} n{n}\r\n\r\nbody {worker}/{n}\r\n".encode()
        ids.append(store.put(raw, Envelope(mail_from="", rcpts=(f"u{worker}@x.fr",)), {"n": n}))
    out.put(ids)  # type: ignore[attr-defined]


def test_concurrent_puts_from_processes_never_collide(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    QuarantineStore(tmp_path / "q")
    procs = [
        ctx.Process(target=_worker, args=(str(tmp_path / "q"), w, start, out))
        for w in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    ids = [qid for chunk in results for qid in chunk]
    assert len(ids) == len(set(ids)) == WORKERS * PER_WORKER
    store = QuarantineStore(tmp_path / "q")
    records = store.list()
    assert sorted(r.id for r in records) == sorted(ids)
    for record in records:
        worker, n = record.envelope.rcpts[0][1], record.verdict["n"]
        expected = f"Subject: w{worker} n{n}\r\n\r\nbody {worker}/{n}\r\n".encode()
        assert store.read_message(record.id) == expected
    assert list(store.tmp.iterdir()) == []

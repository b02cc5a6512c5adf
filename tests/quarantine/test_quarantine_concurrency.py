"""Several worker processes put() into one store at once: no collision, no loss."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from milter.model.envelope import Envelope
from milter.quarantine import QuarantineStore
from milter.quarantine.errors import QuarantineError
from milter.quarantine.index import SqliteIndex

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


def _open_index(path: str, start: object, out: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        SqliteIndex(Path(path))
        out.put("ok")  # type: ignore[attr-defined]
    except QuarantineError as exc:
        out.put(str(exc))  # type: ignore[attr-defined]


def test_workers_starting_together_all_open_a_new_index(tmp_path: Path) -> None:
    """`tocsin serve --workers N` on a new quarantine: every worker opens the index at
    once. Switching a new index to WAL answers "database is locked" without waiting, so
    a worker failed its start with a traceback (about 1 opening in 27 here); now it tries
    again."""
    ctx = multiprocessing.get_context("fork")
    answers = []
    for round_ in range(30):
        start, out = ctx.Barrier(4), ctx.Queue()
        path = str(tmp_path / f"index-{round_}.sqlite3")
        procs = [ctx.Process(target=_open_index, args=(path, start, out)) for _ in range(4)]
        for proc in procs:
            proc.start()
        answers += [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    assert [a for a in answers if a != "ok"] == []

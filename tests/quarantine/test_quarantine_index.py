"""The SQLite index beside the files: search, paging, states, audit, schema, rebuild."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from milter.model.envelope import Envelope
from milter.quarantine import (
    QuarantineBackend,
    QuarantineBusy,
    QuarantineConflict,
    QuarantineError,
    QuarantineStore,
)
from milter.quarantine.backend import SCHEMA_VERSION, AuditEntry, ListQuery

RAW = (
    b"From: =?utf-8?q?Mon_Compte_Formation?= <cpf@lure.example>\r\n"
    b"Subject: Vos droits CPF\r\n\r\nx\r\n"
)
ENV = Envelope(mail_from="bounce@lure.example", rcpts=("agent@mairie.fr", "RH@Mairie.fr"))


def verdict(brand: str = "cpf", disposition: str = "quarantine") -> dict[str, object]:
    return {
        "verdict": disposition,
        "brand": brand,
        "score": 12.5,
        "reasons": [
            {"rule": "cpf_lookalike", "disposition": disposition, "text": "t", "codes": []}
        ],
        "findings": [{"code": "DISPLAY_NAME_BRAND"}, {"code": "LOOKALIKE"}, {"code": "LOOKALIKE"}],
    }


@pytest.fixture
def store(tmp_path: Path) -> QuarantineStore:
    return QuarantineStore(tmp_path / "q")


def test_the_local_store_is_a_backend(store: QuarantineStore) -> None:
    assert isinstance(store, QuarantineBackend)
    assert store.schema_version() == SCHEMA_VERSION


def test_put_indexes_the_listing_fields(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    page = store.search(ListQuery())
    assert page.total == 1
    assert page.next_before is None
    item = page.items[0]
    assert item.id == qid
    assert item.state == "held"
    assert item.from_name == "Mon Compte Formation"
    assert item.from_addr == "cpf@lure.example"
    assert item.subject == "Vos droits CPF"
    assert (item.brand, item.verdict, item.score, item.rule) == (
        "cpf",
        "quarantine",
        12.5,
        "cpf_lookalike",
    )
    assert item.codes == ("DISPLAY_NAME_BRAND", "LOOKALIKE")
    assert item.rcpts == ENV.rcpts
    assert item.size == len(RAW)


def test_filters_combine(store: QuarantineStore) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    a = store.put(RAW, ENV, verdict("cpf"), received_at=old)
    b = store.put(RAW, Envelope(mail_from="x@y.fr", rcpts=("boss@ville.fr",)), verdict("ameli"))
    c = store.put(b"Subject: facture\r\n\r\n", ENV, verdict("ameli", "reject"))

    def ids(**kw: object) -> list[str]:
        return [i.id for i in store.search(ListQuery(**kw)).items]  # type: ignore[arg-type]

    assert ids() == [c, b, a]
    assert ids(brand="AMELI") == [c, b]
    assert ids(verdict="reject") == [c]
    assert ids(recipient="rh@mairie.fr") == [c, a]  # case-insensitive
    assert ids(recipient="@ville.fr") == [b]
    assert ids(recipient="@mairie.fr", brand="ameli") == [c]
    assert ids(since=datetime.now(UTC) - timedelta(days=1)) == [c, b]
    assert ids(until=datetime.now(UTC) - timedelta(days=1)) == [a]
    assert ids(sender="formation") == [b, a]  # From display name
    assert ids(sender="X@Y.FR") == [b]  # envelope sender
    assert ids(text="FACT") == [c]
    assert ids(text="100%_") == []  # LIKE wildcards are literal
    assert ids(state="released") == []


def test_keyset_paging_walks_everything_once(store: QuarantineStore) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    made = [
        store.put(RAW, ENV, verdict(), received_at=start + timedelta(seconds=n)) for n in range(23)
    ]
    seen: list[str] = []
    before = None
    while True:
        page = store.search(ListQuery(limit=5, before=before))
        assert page.total == 23
        seen += [i.id for i in page.items]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == sorted(made, reverse=True)


def test_release_claim_has_a_single_winner(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    claim = store.claim_release(qid, "alice")
    assert store.search(ListQuery()).items[0].state == "releasing"
    with pytest.raises(QuarantineBusy):
        store.claim_release(qid, "bob")
    with pytest.raises(QuarantineBusy):
        store.delete(qid, actor="bob")
    attempt = {"at": datetime.now(UTC).isoformat(), "relay": "r", "ok": True, "reply": "250 ok"}
    store.finish_release(claim, attempt, accepted=True)
    assert store.search(ListQuery()).items[0].state == "released"
    with pytest.raises(QuarantineConflict, match="already released"):
        store.claim_release(qid, "bob")


def test_a_refused_release_goes_back_to_held(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    claim = store.claim_release(qid, "alice")
    attempt = {"at": datetime.now(UTC).isoformat(), "relay": "r", "ok": False, "reply": "451 later"}
    record = store.finish_release(claim, attempt, accepted=False)
    assert record.status == "held"
    assert store.search(ListQuery(state="held")).total == 1
    assert store.get(qid).attempts[-1]["reply"] == "451 later"


def test_an_abandoned_release_needs_force(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    store.abandon(store.claim_release(qid, "alice"))  # e.g. the process died mid-DATA
    with pytest.raises(QuarantineConflict, match="interrupted"):
        store.claim_release(qid, "bob")
    claim = store.claim_release(qid, "bob", force=True)
    assert claim.record.id == qid
    store.abandon(claim)


def _claimer(directory: str, qid: str, start: object, out: object) -> None:
    store = QuarantineStore(Path(directory))
    start.wait()  # type: ignore[attr-defined]
    try:
        claim = store.claim_release(qid, f"pid{os.getpid()}")
    except QuarantineBusy:
        out.put("busy")  # type: ignore[attr-defined]
        return
    out.put("won")  # type: ignore[attr-defined]
    time.sleep(1.0)  # hold it while the others try
    store.abandon(claim)


def test_processes_racing_for_one_release_have_one_winner(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(str(store.directory), qid, start, out)) for _ in range(5)
    ]
    for proc in procs:
        proc.start()
    start.set()
    results = sorted(out.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    assert results == ["busy"] * 4 + ["won"]


def test_delete_and_purge_drop_rows_and_are_audited(store: QuarantineStore) -> None:
    old = store.put(RAW, ENV, verdict(), received_at=datetime.now(UTC) - timedelta(days=40))
    new = store.put(RAW, ENV, verdict())
    store.delete(new, actor="alice")
    assert store.purge(timedelta(days=30), actor="cron") == [old]
    assert store.search(ListQuery()).total == 0
    trail = store.audit_trail()
    assert trail[0].action == "purge"
    assert trail[0].actor == "cron"
    assert list(trail[0].extra["ids"]) == [old]


def test_audit_trail_survives_a_lost_index(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    store.record_action(AuditEntry.now("alice", "login", None, "ok", "127.0.0.1"))
    store.record_action(AuditEntry.now("alice", "delete", qid, "refused", "nope"))
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.index.path}{suffix}").unlink(missing_ok=True)
    again = QuarantineStore(store.directory)
    assert [i.id for i in again.search(ListQuery()).items] == [qid]  # rebuilt from files
    assert [(e.actor, e.action, e.qid) for e in again.audit_trail()] == [
        ("alice", "delete", qid),
        ("alice", "login", None),
    ]
    assert [e.action for e in again.audit_trail(qid)] == ["delete"]


def test_reindex_rebuilds_released_states(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    claim = store.claim_release(qid, "a")
    store.finish_release(
        claim, {"at": datetime.now(UTC).isoformat(), "reply": "250"}, accepted=True
    )
    assert store.reindex() == (1, 0)
    assert store.search(ListQuery(state="released")).total == 1


def test_files_without_a_row_are_indexed_on_open(store: QuarantineStore) -> None:
    # a crash after the files were committed but before the index row: reconcile adds it
    qid = store.put(RAW, ENV, verdict())
    store.index.remove(qid)
    assert store.search(ListQuery()).total == 0
    assert QuarantineStore(store.directory).search(ListQuery()).total == 1


def test_rows_without_files_are_dropped_on_open(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, verdict())
    store.meta_path(qid).unlink()  # a crash between the file delete and the row delete
    assert QuarantineStore(store.directory).search(ListQuery()).total == 0


def test_an_index_failure_fails_the_put_and_leaves_nothing(
    store: QuarantineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kw: object) -> None:
        raise QuarantineError("index: database or disk is full")

    monkeypatch.setattr(store.index, "add", broken)
    with pytest.raises(QuarantineError, match="disk is full"):
        store.put(RAW, ENV, verdict())
    monkeypatch.undo()
    assert store.ids() == []


def test_a_newer_schema_is_refused(store: QuarantineStore) -> None:
    store.close()
    with sqlite3.connect(store.index.path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(QuarantineError, match="newer than this Tocsin"):
        QuarantineStore(store.directory)


def _writer(directory: str) -> None:
    store = QuarantineStore(Path(directory))
    body = b"x" * 200_000
    n = 0
    while True:
        n += 1
        store.put(b"Subject: n%d\r\n\r\n" % n + body, ENV, verdict())


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.3])
def test_a_writer_killed_mid_write_leaves_no_partial_item(tmp_path: Path, delay: float) -> None:
    directory = tmp_path / "q"
    QuarantineStore(directory).close()
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_writer, args=(str(directory),))
    proc.start()
    try:
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
    store = QuarantineStore(directory)
    page = store.search(ListQuery(limit=500))
    assert page.total >= 1, "the writer stored nothing before the kill; the test proved nothing"
    for item in page.items:  # every listed item is whole: bytes match the recorded hash
        raw = store.read_message(item.id)
        assert raw.startswith(b"Subject: n")
        assert len(raw) == item.size
    assert page.total == len(store.ids())  # index and files agree after the kill

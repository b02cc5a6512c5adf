"""The quarantine store: round trip, permissions, strict ids, atomicity under failures."""

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from milter.model.envelope import Envelope
from milter.quarantine import (
    InvalidQuarantineId,
    QuarantineBusy,
    QuarantineError,
    QuarantineNotFound,
    QuarantineStore,
)
from milter.quarantine.ids import id_time, new_id, validate_id

RAW = (
    b"From: Assurance Maladie <alerte@ameli-remboursement.fr>\r\n"
    b"To: victime@example.fr\r\n"
    b"Subject: =?utf-8?q?Remboursement_en_attente_=E2=82=AC?=\r\n"
    b"\r\n"
    b"Cliquez ici.\r\n"
)
ENV = Envelope(
    client_ip="192.0.2.7",
    helo="mx.evil.test",
    mail_from="bounce@evil.test",
    rcpts=("victime@example.fr", "Autre@Example.fr"),
    queue_id="4XyZ12",
    macros={"j": "mx.example.fr"},
)
VERDICT = {"verdict": "quarantine", "brand": "ameli", "score": 12.0, "reasons": [], "findings": []}


@pytest.fixture
def store(tmp_path: Path) -> QuarantineStore:
    return QuarantineStore(tmp_path / "q")


def visible(store: QuarantineStore) -> list[str]:
    """Every entry a reader could see: record files and work files (not the store's own
    index, audit trail and release key)."""
    own = ("tmp", "release.key", "audit.log")
    names = [
        p.name
        for p in store.directory.iterdir()
        if p.name not in own and not p.name.startswith("index.sqlite3")
    ]
    return sorted(names + [f"tmp/{p.name}" for p in store.tmp.iterdir()])


def test_round_trip_keeps_bytes_envelope_and_verdict(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    record = store.get(qid)
    assert store.read_message(qid) == RAW
    assert record.envelope == ENV
    assert record.verdict == VERDICT
    assert record.status == "held"
    assert record.size == len(RAW)
    assert record.brand == "ameli"
    assert record.subject == "Remboursement en attente €"
    assert record.header_from.endswith("<alerte@ameli-remboursement.fr>")
    assert record.received_at.tzinfo is not None
    assert abs(record.received_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert id_time(qid) == record.received_at


def test_directory_is_0700_and_files_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = QuarantineStore(tmp_path / "deep" / "q")
        qid = store.put(RAW, ENV, VERDICT)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.message_path(qid).stat().st_mode) == 0o600
    assert stat.S_IMODE(store.meta_path(qid).stat().st_mode) == 0o600


def test_null_sender_survives_the_round_trip(store: QuarantineStore) -> None:
    qid = store.put(RAW, Envelope(mail_from="", rcpts=("a@b.fr",)), VERDICT)
    assert store.get(qid).envelope.mail_from == ""


def test_ids_are_time_ordered_and_unique(store: QuarantineStore) -> None:
    ids = [store.put(RAW, ENV, VERDICT) for _ in range(50)]
    assert len(set(ids)) == 50
    assert [r.id for r in store.list()] == sorted(ids, reverse=True)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../../etc/passwd",
        "20261123T192406155097Z-a64ca53a7f4b/../x",
        "20261123T192406155097Z-a64ca53a7f4b.json",
        "20261123T192406155097Z-A64CA53A7F4B",
        "20261123T192406155097Z-a64ca53a7f4b\n",
        "/20261123T192406155097Z-a64ca53a7f4b",
        "20261399T192406155097Z-a64ca53a7f4b",  # month 13
        "２0261123T192406155097Z-a64ca53a7f4b",  # fullwidth digit
    ],
)
def test_malformed_ids_are_refused_before_any_file_access(store: QuarantineStore, bad: str) -> None:
    with pytest.raises(InvalidQuarantineId):
        validate_id(bad)
    for call in (store.get, store.read_message, store.delete):
        with pytest.raises(InvalidQuarantineId):
            call(bad)


def test_a_fresh_id_validates() -> None:
    assert validate_id(new_id(datetime.now(UTC)))


def test_unknown_id_is_not_found(store: QuarantineStore) -> None:
    qid = new_id(datetime.now(UTC))
    with pytest.raises(QuarantineNotFound):
        store.get(qid)
    with pytest.raises(QuarantineNotFound):
        store.delete(qid)


def test_delete_removes_both_files(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    store.delete(qid)
    assert visible(store) == []
    with pytest.raises(QuarantineNotFound):
        store.get(qid)


# -- atomicity under failures ---------------------------------------------------------------


def _failing(real: object, fail_on: int, err: int) -> object:
    calls = {"n": 0}

    def wrapper(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == fail_on:
            raise OSError(err, os.strerror(err))
        return real(*args, **kwargs)  # type: ignore[operator]

    return wrapper


@pytest.mark.parametrize("fail_on", [1, 2, 3, 4])
def test_fsync_failure_at_any_step_leaves_nothing(
    store: QuarantineStore, monkeypatch: pytest.MonkeyPatch, fail_on: int
) -> None:
    # put() fsyncs: message tmp, metadata tmp, directory (after link), directory (after rename)
    monkeypatch.setattr(os, "fsync", _failing(os.fsync, fail_on, errno.ENOSPC))
    with pytest.raises(QuarantineError, match=r"No space left on device.*|.*errno 28"):
        store.put(RAW, ENV, VERDICT)
    monkeypatch.undo()
    assert visible(store) == []
    assert store.list() == []


@pytest.mark.parametrize("fail_on", [1, 2])
def test_write_failure_leaves_nothing(
    store: QuarantineStore, monkeypatch: pytest.MonkeyPatch, fail_on: int
) -> None:
    monkeypatch.setattr(os, "write", _failing(os.write, fail_on, errno.ENOSPC))
    with pytest.raises(QuarantineError) as info:
        store.put(RAW, ENV, VERDICT)
    monkeypatch.undo()
    assert str(store.directory) in str(info.value)
    assert visible(store) == []


@pytest.mark.parametrize("name", ["link", "rename"])
def test_publish_failure_leaves_nothing(
    store: QuarantineStore, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(os, name, _failing(getattr(os, name), 1, errno.EACCES))
    with pytest.raises(QuarantineError, match="Permission denied"):
        store.put(RAW, ENV, VERDICT)
    monkeypatch.undo()
    assert visible(store) == []


def test_short_writes_are_completed(
    store: QuarantineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:7])))
    qid = store.put(RAW, ENV, VERDICT)
    monkeypatch.undo()
    assert store.read_message(qid) == RAW


def test_unserialisable_verdict_is_a_quarantine_error(store: QuarantineStore) -> None:
    with pytest.raises(QuarantineError, match="JSON"):
        store.put(RAW, ENV, {"verdict": object()})
    assert visible(store) == []


def test_unwritable_directory_is_a_quarantine_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    store = QuarantineStore(tmp_path / "q")
    store.directory.chmod(0o500)
    try:
        with pytest.raises(QuarantineError, match="Permission denied"):
            store.put(RAW, ENV, VERDICT)
    finally:
        store.directory.chmod(0o700)


def test_tampered_message_is_detected(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    store.message_path(qid).write_bytes(RAW.replace(b"ici", b"ICI"))
    with pytest.raises(QuarantineError, match="SHA-256"):
        store.read_message(qid)


def test_corrupt_metadata_is_reported_not_fatal(store: QuarantineStore) -> None:
    good = store.put(RAW, ENV, VERDICT)
    bad = store.put(RAW, ENV, VERDICT)
    store.meta_path(bad).write_text("{not json")
    with pytest.raises(QuarantineError, match="corrupt"):
        store.get(bad)
    errors: list[QuarantineError] = []
    assert [r.id for r in store.list(errors=errors)] == [good]
    assert len(errors) == 1
    assert bad in str(errors[0])


def test_metadata_naming_another_id_is_corrupt(store: QuarantineStore) -> None:
    one, two = store.put(RAW, ENV, VERDICT), store.put(RAW, ENV, VERDICT)
    store.meta_path(two).write_bytes(store.meta_path(one).read_bytes())
    with pytest.raises(QuarantineError, match="id says"):
        store.get(two)


# -- crash leftovers --------------------------------------------------------------------------


def test_leftovers_are_ignored_then_cleaned(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    kept = store.put(RAW, ENV, VERDICT)
    orphan = new_id(datetime.now(UTC))
    (store.directory / f"{orphan}.eml").write_bytes(RAW)  # crash before the metadata
    (store.tmp / f"{orphan}.123.abcd.json.tmp").write_bytes(b"{")  # crash mid-write
    assert [r.id for r in store.list()] == [kept]

    # recent leftovers may belong to a put in progress: untouched
    QuarantineStore(store.directory)
    assert (store.directory / f"{orphan}.eml").exists()
    old = datetime.now(UTC).timestamp() - 7200
    for path in (store.directory / f"{orphan}.eml", store.tmp / f"{orphan}.123.abcd.json.tmp"):
        os.utime(path, (old, old))
    assert store.cleanup() == 2
    assert visible(store) == sorted([f"{kept}.eml", f"{kept}.json"])


def test_reopening_cleans_stale_tmp_files(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    junk = store.tmp / "x.1.ab.eml.tmp"
    junk.write_bytes(b"partial")
    QuarantineStore(store.directory, stale_after=timedelta(0))
    assert not junk.exists()


# -- listing, release history, purge ----------------------------------------------------------


def test_list_filters(store: QuarantineStore) -> None:
    now = datetime.now(UTC)
    old = store.put(RAW, ENV, VERDICT, received_at=now - timedelta(days=10))
    cpf = store.put(
        RAW, Envelope(rcpts=("rh@mairie.fr",)), {**VERDICT, "brand": "cpf"}, received_at=now
    )
    released = store.put(RAW, ENV, VERDICT, received_at=now - timedelta(hours=1))
    store.add_attempt(released, {"ok": True, "reply": "250 ok"}, released_at=now)

    assert [r.id for r in store.list()] == [cpf, released, old]
    assert [r.id for r in store.list(brand="CPF")] == [cpf]
    assert [r.id for r in store.list(status="held")] == [cpf, old]
    assert [r.id for r in store.list(status="released")] == [released]
    assert [r.id for r in store.list(since=now - timedelta(days=1))] == [cpf, released]
    assert [r.id for r in store.list(until=now - timedelta(days=1))] == [old]
    assert [r.id for r in store.list(recipient="autre@example.FR")] == [released, old]
    assert [r.id for r in store.list(recipient="@mairie.fr")] == [cpf]
    assert [r.id for r in store.list(limit=2)] == [cpf, released]


def test_add_attempt_keeps_history_and_marks_released(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    store.add_attempt(qid, {"ok": False, "reply": "451 later"})
    when = datetime.now(UTC)
    store.add_attempt(qid, {"ok": True, "reply": "250 queued"}, released_at=when)
    record = store.get(qid)
    assert record.status == "released"
    assert record.released_at == when
    assert [a["reply"] for a in record.attempts] == ["451 later", "250 queued"]
    assert json.loads(store.meta_path(qid).read_text())["status"] == "released"


def test_purge_deletes_only_old_records(store: QuarantineStore) -> None:
    now = datetime.now(UTC)
    old = store.put(RAW, ENV, VERDICT, received_at=now - timedelta(days=31))
    old_released = store.put(RAW, ENV, VERDICT, received_at=now - timedelta(days=40))
    store.add_attempt(old_released, {"ok": True}, released_at=now)
    young = store.put(RAW, ENV, VERDICT, received_at=now - timedelta(days=29))

    assert store.purge(timedelta(days=30), dry_run=True) == [old, old_released]
    assert len(store.ids()) == 3
    assert store.purge(timedelta(days=30), status="released") == [old_released]
    assert store.purge(timedelta(days=30)) == [old]
    assert store.ids() == [young]


def test_a_locked_record_is_busy(store: QuarantineStore) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    with store.lock(qid):
        with pytest.raises(QuarantineBusy):
            store.delete(qid)
        assert store.purge(timedelta(0)) == []
    store.delete(qid)


def test_an_id_collision_never_overwrites(
    store: QuarantineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import milter.quarantine.files as store_module

    first = store.put(RAW, ENV, VERDICT)
    fresh = new_id(datetime.now(UTC))
    queue = [first, first, fresh]
    monkeypatch.setattr(store_module, "new_id", lambda _when: queue.pop(0))
    second = store.put(b"Subject: other\r\n\r\nx\r\n", ENV, {"verdict": "quarantine"})
    assert second == fresh
    assert store.read_message(first) == RAW
    assert store.get(first).verdict == VERDICT
    assert visible(store) == sorted(f"{q}.{e}" for q in (first, fresh) for e in ("eml", "json"))


def test_root_writes_files_owned_by_the_store_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to change file owners")
    directory = tmp_path / "q"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    store = QuarantineStore(directory)
    qid = store.put(RAW, ENV, VERDICT)
    store.add_attempt(qid, {"ok": False})
    for path in (store.message_path(qid), store.meta_path(qid), store.tmp):
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)

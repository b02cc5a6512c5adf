"""``PostgresStore`` against a real private PostgreSQL: the backend contract, end to end."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from milter.model.envelope import Envelope
from milter.quarantine.backend import AuditEntry, ListQuery, QuarantineBackend, ReleaseClaim
from milter.quarantine.errors import (
    InvalidQuarantineId,
    QuarantineBusy,
    QuarantineConflict,
    QuarantineError,
    QuarantineNotFound,
)
from milter.quarantine.postgres import PostgresStore
from tests.support.pg import PgCluster, store_on

ROOT = Path(__file__).resolve().parents[2]
LURE = (ROOT / "docs" / "examples" / "cpf-lure.eml").read_bytes()
ENVELOPE = Envelope(
    client_ip="192.0.2.7",
    helo="mail.example.org",
    mail_from="noreply@cpf-alerte.example.org",
    rcpts=("Alice@Example.COM", "bob@example.net"),
    queue_id="4XyZ1",
)


def verdict(brand: str = "cpf", score: float = 33.0, disposition: str = "quarantine") -> dict:
    return {
        "verdict": disposition,
        "brand": brand,
        "score": score,
        "reasons": [{"rule": "brand-impersonation", "codes": ["DISPLAY_NAME_BRAND"]}],
        "findings": [
            {"code": "LINK_LOOKALIKE", "severity": "critical"},
            {"code": "DISPLAY_NAME_BRAND", "severity": "high"},
            {"code": "LINK_LOOKALIKE", "severity": "critical"},
        ],
        "actions": [],
    }


def test_is_a_quarantine_backend(pg_store: PostgresStore) -> None:
    assert isinstance(pg_store, QuarantineBackend)


def test_put_then_get_read_and_list(pg_store: PostgresStore) -> None:
    qid = pg_store.put(LURE, ENVELOPE, verdict())
    record = pg_store.get(qid)
    assert record.id == qid
    assert record.envelope == ENVELOPE
    assert record.sha256 == hashlib.sha256(LURE).hexdigest()
    assert record.status == "held"
    assert record.brand == "cpf"
    assert pg_store.read_message(qid) == LURE
    page = pg_store.search(ListQuery())
    assert page.total == 1
    (item,) = page.items
    assert item.id == qid
    assert item.state == "held"
    assert item.codes == ("LINK_LOOKALIKE", "DISPLAY_NAME_BRAND")
    assert item.rule == "brand-impersonation"
    assert item.from_addr
    assert item.from_addr in record.header_from
    assert item.size == len(LURE)


def test_hostile_text_is_stored_and_the_envelope_replays_exactly(
    pg_store: PostgresStore,
) -> None:
    raw = b"From: \x00Evil <e@x.test>\r\nSubject: a\x00b \xff\xfe\r\n\r\nbody\x00\r\n"
    envelope = Envelope(mail_from="s\udcffx@x.test", rcpts=("r\x00@y.test",), helo="h\udc80")
    qid = pg_store.put(raw, envelope, {**verdict(), "evidence": "nul \x00 here"})
    assert pg_store.read_message(qid) == raw
    record = pg_store.get(qid)
    assert record.envelope == envelope  # lossless: release replays these bytes
    assert record.verdict["evidence"] == "nul \x00 here"
    (item,) = pg_store.search(ListQuery()).items
    assert "\x00" not in item.subject + item.from_name + item.mail_from + "".join(item.rcpts)


def test_filters_paging_and_total(pg_store: PostgresStore) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    ids = []
    for n in range(12):
        brand = "cpf" if n % 3 else "ameli"
        rcpts = ("a@one.test",) if n % 2 else ("b@two.test", "c@one.test")
        ids.append(
            pg_store.put(
                LURE,
                Envelope(mail_from=f"zq{n}q@x.test", rcpts=rcpts),
                verdict(brand=brand),
                received_at=base + timedelta(hours=n),
            )
        )
    newest_first = list(reversed(ids))
    first = pg_store.search(ListQuery(limit=5))
    assert first.total == 12
    assert [i.id for i in first.items] == newest_first[:5]
    second = pg_store.search(ListQuery(limit=5, before=first.next_before))
    assert [i.id for i in second.items] == newest_first[5:10]
    last = pg_store.search(ListQuery(limit=5, before=second.next_before))
    assert [i.id for i in last.items] == newest_first[10:]
    assert last.next_before is None

    assert pg_store.search(ListQuery(brand="AMELI")).total == 4
    assert pg_store.brands() == ["ameli", "cpf"]
    assert pg_store.search(ListQuery(recipient="@one.test")).total == 12
    assert pg_store.search(ListQuery(recipient="B@TWO.test")).total == 6
    assert pg_store.search(ListQuery(sender="ZQ1")).total == 3  # zq1q, zq10q, zq11q
    assert pg_store.search(ListQuery(sender="100%")).total == 0  # LIKE characters escaped
    assert pg_store.search(ListQuery(since=base + timedelta(hours=10))).total == 2
    assert pg_store.search(ListQuery(until=base + timedelta(hours=2))).total == 2
    assert pg_store.search(ListQuery(verdict="reject")).total == 0


def test_racing_claims_have_exactly_one_winner(
    pg_cluster: PgCluster, pg_store: PostgresStore
) -> None:
    qid = pg_store.put(LURE, ENVELOPE, verdict())
    name = pg_store.target.dsn.rsplit("/", 1)[1]
    other = store_on(pg_cluster, name, gateway="mx2.test")  # a second gateway's store
    stores = [pg_store, other] * 4
    barrier = threading.Barrier(len(stores))
    won: list[ReleaseClaim] = []
    lost: list[QuarantineError] = []

    def claim(store: PostgresStore, n: int) -> None:
        barrier.wait()
        try:
            won.append(store.claim_release(qid, f"reviewer{n}"))
        except (QuarantineBusy, QuarantineConflict) as exc:
            lost.append(exc)

    threads = [threading.Thread(target=claim, args=(s, n)) for n, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(won) == 1
        assert len(lost) == 7
        assert pg_store.search(ListQuery()).items[0].state == "releasing"
        with pytest.raises(QuarantineBusy):  # the winner is alive: busy, not interrupted
            other.claim_release(qid, "late", force=True)
    finally:
        for claim_ in won:
            pg_store.abandon(claim_)
        other.close()


def test_release_transitions(pg_store: PostgresStore) -> None:
    qid = pg_store.put(LURE, ENVELOPE, verdict())
    claim = pg_store.claim_release(qid, "alice")
    assert claim.record.envelope == ENVELOPE
    with pytest.raises(QuarantineBusy, match="alice"):
        pg_store.delete(qid, actor="bob")
    refused = {"at": "2026-11-01T10:00:00+00:00", "relay": "r:25", "ok": False, "reply": "451"}
    pg_store.record_attempt(claim, refused)  # will be retried: still releasing
    assert pg_store.search(ListQuery()).items[0].state == "releasing"
    back = pg_store.finish_release(claim, refused, accepted=False)
    assert back.status == "held"
    assert back.attempts == (refused, refused)
    claim = pg_store.claim_release(qid, "alice")
    ok = {**refused, "at": "2026-11-01T10:05:00+00:00", "ok": True, "reply": "250 queued"}
    done = pg_store.finish_release(claim, ok, accepted=True)
    assert done.status == "released"
    assert done.released_at == datetime(2026, 11, 1, 10, 5, tzinfo=UTC)
    assert done.attempts == (refused, refused, ok)
    with pytest.raises(QuarantineConflict, match="already released"):
        pg_store.claim_release(qid, "bob")
    with pytest.raises(QuarantineConflict):  # the old claim cannot act twice
        pg_store.finish_release(claim, ok, accepted=True)
    forced = pg_store.claim_release(qid, "bob", force=True)
    pg_store.finish_release(forced, ok, accepted=True, delete=True)
    with pytest.raises(QuarantineNotFound):
        pg_store.get(qid)


def test_an_interrupted_release_needs_force(pg_store: PostgresStore) -> None:
    qid = pg_store.put(LURE, ENVELOPE, verdict())
    stale = pg_store.claim_release(qid, "crashed-reviewer")
    pg_store.abandon(stale)  # as if its process died: the lock goes, the state stays
    with pytest.raises(QuarantineConflict, match="interrupted"):
        pg_store.claim_release(qid, "admin")
    fresh = pg_store.claim_release(qid, "admin", force=True)
    with pytest.raises(QuarantineConflict, match="crashed-reviewer"):
        pg_store.finish_release(stale, {"ok": True}, accepted=True)
    assert pg_store.finish_release(fresh, {"ok": True}, accepted=True).status == "released"


def test_delete_removes_the_bytes_too(pg_store: PostgresStore, pg_cluster: PgCluster) -> None:
    qid = pg_store.put(LURE, ENVELOPE, verdict())
    pg_store.delete(qid, actor="alice")
    with pytest.raises(QuarantineNotFound):
        pg_store.read_message(qid)
    with pytest.raises(QuarantineNotFound):
        pg_store.delete(qid)
    name = pg_store.target.dsn.rsplit("/", 1)[1]
    with psycopg.connect(pg_cluster.dsn_with_password(name)) as conn:
        left = conn.execute("SELECT count(*) FROM quarantine_message").fetchone()
    assert left == (0,)


def test_purge_by_age_and_state_skips_releasing(pg_store: PostgresStore) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    held = pg_store.put(LURE, ENVELOPE, verdict(), received_at=old)
    busy = pg_store.put(LURE, ENVELOPE, verdict(), received_at=old)
    released = pg_store.put(LURE, ENVELOPE, verdict(), received_at=old)
    recent = pg_store.put(LURE, ENVELOPE, verdict())
    pg_store.claim_release(busy, "alice")
    claim = pg_store.claim_release(released, "alice")
    pg_store.finish_release(claim, {"ok": True}, accepted=True)
    assert list(pg_store.purge(timedelta(days=30), dry_run=True)) == sorted([held, released])
    assert list(pg_store.purge(timedelta(days=30), status="released")) == [released]
    assert list(pg_store.purge(timedelta(days=30))) == [held]
    left = {i.id for i in pg_store.search(ListQuery()).items}
    assert left == {busy, recent}
    entry = pg_store.audit_trail()[0]
    assert entry.action == "purge"
    assert entry.extra == {"count": 1, "ids": [held]}


def test_audit_trail_and_release_key(pg_store: PostgresStore, pg_cluster: PgCluster) -> None:
    when = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    pg_store.record_action(AuditEntry(when, "alice", "login", None, "ok", "127.0.0.1"))
    (entry,) = pg_store.audit_trail()
    assert entry == AuditEntry(when, "alice", "login", None, "ok", "127.0.0.1", {})
    key = pg_store.release_key()
    assert len(key) >= 32
    name = pg_store.target.dsn.rsplit("/", 1)[1]
    other = store_on(pg_cluster, name)
    try:
        assert other.release_key() == key  # every gateway signs with the same key
    finally:
        other.close()


def test_bad_ids_never_reach_the_database(pg_store: PostgresStore) -> None:
    for bad in ("../etc/passwd", "x' OR '1'='1", "20261101T000000000000Z-zz"):
        with pytest.raises(InvalidQuarantineId):
            pg_store.get(bad)
        with pytest.raises(InvalidQuarantineId):
            pg_store.search(ListQuery(before=bad))
        with pytest.raises(InvalidQuarantineId):
            pg_store.claim_release(bad, "alice")


def test_unmigrated_database_is_refused_with_the_remedy(pg_cluster: PgCluster) -> None:
    name = pg_cluster.create_database()
    store = store_on(pg_cluster, name)
    try:
        with pytest.raises(QuarantineError, match="tocsin quarantine migrate"):
            store.put(LURE, ENVELOPE, verdict())
    finally:
        store.close()
        pg_cluster.drop_database(name)


def test_wrong_password_is_a_clean_error(pg_cluster: PgCluster, tmp_path: Path) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    from milter.quarantine.postgres_config import DatabaseTarget

    store = PostgresStore(DatabaseTarget(pg_cluster.dsn(), password_file=wrong), timeout=2)
    try:
        with pytest.raises(QuarantineError) as caught:
            store.put(LURE, ENVELOPE, verdict())
    finally:
        store.close()
    assert "not-the-password" not in str(caught.value)

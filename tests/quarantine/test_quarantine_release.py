"""Release re-injects to a real SMTP server and marks released only after it said 250."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from milter.model.envelope import Envelope
from milter.quarantine import (
    QuarantineBusy,
    QuarantineConflict,
    QuarantineNotFound,
    QuarantineStore,
    ReleaseError,
    release,
)
from tests.quarantine.conftest import Sink

RAW = (
    b"From: CPF <info@moncompteformation.gouv.fr>\r\n"
    b"To: agent@mairie.fr\r\n"
    b"Subject: Vos droits\r\n"
    b"\r\n"
    b"Bonjour,\r\n.leading dot line\r\n"
)
ENV = Envelope(
    mail_from="info@moncompteformation.gouv.fr", rcpts=("agent@mairie.fr", "rh@mairie.fr")
)
VERDICT = {"verdict": "quarantine", "brand": "cpf"}
HEADER = re.compile(
    rb"^X-Tocsin-Released: (?P<id>[0-9T]+Z-[0-9a-f]{12}); "
    rb"(?P<date>\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT)\r\n"
    rb"X-Tocsin-Release-Token: (?P=id); exp=[0-9]+; mac=[0-9a-f]{64}\r\n"
)


@pytest.fixture
def store(tmp_path: Path) -> QuarantineStore:
    return QuarantineStore(tmp_path / "q")


async def test_release_replays_envelope_and_bytes_then_marks_released(
    store: QuarantineStore, sink: Sink
) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    result = await release(store, qid, "127.0.0.1", sink.port)

    assert len(sink.received) == 1
    got = sink.received[0]
    assert got.mail_from == ENV.mail_from
    assert got.rcpts == list(ENV.rcpts)
    match = HEADER.match(got.content)
    assert match is not None, got.content[:120]
    assert match.group("id").decode() == qid
    assert got.content[match.end() :] == RAW  # dot-stuffing undone by the server: exact bytes

    assert result.reply == "250 2.0.0 Ok: queued as SINK42"
    assert not result.deleted
    record = store.get(qid)
    assert record.status == "released"
    assert record.released_at == result.released_at
    assert record.attempts[-1]["ok"] is True
    assert record.attempts[-1]["reply"] == result.reply
    assert store.read_message(qid) == RAW  # the stored copy is untouched


async def test_null_sender_is_replayed_as_null(store: QuarantineStore, sink: Sink) -> None:
    qid = store.put(RAW, Envelope(mail_from="", rcpts=("agent@mairie.fr",)), VERDICT)
    await release(store, qid, "127.0.0.1", sink.port)
    assert sink.received[0].mail_from == "<>"


async def test_release_with_delete_removes_the_record(store: QuarantineStore, sink: Sink) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    result = await release(store, qid, "127.0.0.1", sink.port, delete=True)
    assert result.deleted
    assert len(sink.received) == 1
    with pytest.raises(QuarantineNotFound):
        store.get(qid)


async def test_a_refused_recipient_sends_nothing_and_keeps_it_held(
    store: QuarantineStore, sink: Sink
) -> None:
    sink.refuse["rh@mairie.fr"] = "550 5.1.1 <rh@mairie.fr>: Recipient address rejected"
    qid = store.put(RAW, ENV, VERDICT)
    with pytest.raises(ReleaseError, match=r"rh@mairie\.fr") as info:
        await release(store, qid, "127.0.0.1", sink.port, delete=True)
    assert info.value.refused == {
        "rh@mairie.fr": "550 5.1.1 <rh@mairie.fr>: Recipient address rejected"
    }
    assert not info.value.temporary
    assert sink.transactions == 0  # no DATA: the other recipient did not get it either
    record = store.get(qid)
    assert record.status == "held"
    assert record.attempts[-1]["ok"] is False
    assert "550 5.1.1" in record.attempts[-1]["reply"]
    assert store.read_message(qid) == RAW


async def test_a_4xx_at_end_of_data_keeps_it_held_then_retry_succeeds(
    store: QuarantineStore, sink: Sink
) -> None:
    sink.data_replies = ["452 4.3.1 Insufficient system storage"]
    qid = store.put(RAW, ENV, VERDICT)
    with pytest.raises(ReleaseError, match="452") as info:
        await release(store, qid, "127.0.0.1", sink.port)
    assert info.value.temporary
    assert info.value.code == 452
    assert store.get(qid).status == "held"

    sink.data_replies = ["451 4.3.0 try again"]
    result = await release(store, qid, "127.0.0.1", sink.port, retries=1, retry_delay=0)
    assert result.attempts == 2
    record = store.get(qid)
    assert record.status == "released"
    assert [a["ok"] for a in record.attempts] == [False, False, True]
    assert len(sink.received) == 1


async def test_a_5xx_at_end_of_data_is_permanent(store: QuarantineStore, sink: Sink) -> None:
    sink.data_replies = ["554 5.7.1 rejected", "554 5.7.1 rejected"]
    qid = store.put(RAW, ENV, VERDICT)
    with pytest.raises(ReleaseError) as info:
        await release(store, qid, "127.0.0.1", sink.port, retries=3, retry_delay=0)
    assert not info.value.temporary
    assert sink.transactions == 1  # a permanent refusal is not retried
    assert store.get(qid).status == "held"


async def test_an_unreachable_relay_keeps_it_held(store: QuarantineStore) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    qid = store.put(RAW, ENV, VERDICT)
    with pytest.raises(ReleaseError, match="cannot talk to relay") as info:
        await release(store, qid, "127.0.0.1", port, smtp_timeout=5)
    assert info.value.temporary
    assert store.get(qid).status == "held"


async def test_releasing_twice_needs_force(store: QuarantineStore, sink: Sink) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    await release(store, qid, "127.0.0.1", sink.port)
    with pytest.raises(QuarantineConflict, match="already released"):
        await release(store, qid, "127.0.0.1", sink.port)
    await release(store, qid, "127.0.0.1", sink.port, force=True)
    assert len(sink.received) == 2


async def test_a_release_in_progress_blocks_another(store: QuarantineStore, sink: Sink) -> None:
    qid = store.put(RAW, ENV, VERDICT)
    with store.lock(qid), pytest.raises(QuarantineBusy):
        await release(store, qid, "127.0.0.1", sink.port)
    assert sink.transactions == 0


async def test_utf8_addresses_use_smtputf8(store: QuarantineStore, sink: Sink) -> None:
    env = Envelope(mail_from="élise@exemple.fr", rcpts=("agent@mairie.fr",))
    qid = store.put(RAW, env, VERDICT)
    await release(store, qid, "127.0.0.1", sink.port)
    assert sink.received[0].mail_from == "élise@exemple.fr"
    assert "SMTPUTF8" in sink.received[0].mail_options


async def test_lf_messages_get_an_lf_header(store: QuarantineStore, sink: Sink) -> None:
    raw = RAW.replace(b"\r\n", b"\n")
    qid = store.put(raw, ENV, VERDICT)
    await release(store, qid, "127.0.0.1", sink.port)
    content = sink.received[0].content  # the SMTP transfer is CRLF on the wire
    assert content.startswith(b"X-Tocsin-Released: " + qid.encode())
    assert content.count(b"X-Tocsin-Released") == 1
    assert content.endswith(RAW)


async def test_a_transform_gets_the_record_and_its_body_is_released(
    store: QuarantineStore, sink: Sink
) -> None:
    seen: list[tuple[object, ...]] = []

    def banner(
        raw: bytes, verdict: object, rcpts: tuple[str, ...], *, false_positive: bool
    ) -> bytes:
        seen.append((raw, verdict, rcpts, false_positive))
        return b"[banner]\r\n" + raw.split(b"\r\n\r\n", 1)[1]

    qid = store.put(RAW, ENV, VERDICT)
    result = await release(store, qid, "127.0.0.1", sink.port, transform=banner)
    assert result.edited
    assert seen == [(RAW, VERDICT, ENV.rcpts, False)]
    match = HEADER.match(sink.received[0].content)
    assert match is not None
    head, body = RAW.split(b"\r\n\r\n", 1)
    assert sink.received[0].content[match.end() :] == head + b"\r\n\r\n[banner]\r\n" + body
    assert store.read_message(qid) == RAW  # the stored copy is untouched


async def test_a_failing_transform_keeps_the_message_held(
    store: QuarantineStore, sink: Sink
) -> None:
    def broken(
        raw: bytes, verdict: object, rcpts: tuple[str, ...], *, false_positive: bool
    ) -> bytes:
        raise ValueError("cannot parse")

    qid = store.put(RAW, ENV, VERDICT)
    with pytest.raises(ReleaseError, match=r"cannot add the warning banner.*still held") as info:
        await release(store, qid, "127.0.0.1", sink.port, transform=broken)
    assert not info.value.temporary
    assert sink.received == []
    assert store.get(qid).status == "held"
    # released as a false positive, the transform gives no new body: delivered as held
    result = await release(
        store, qid, "127.0.0.1", sink.port, transform=lambda *a, **k: None, false_positive=True
    )
    assert not result.edited
    assert sink.received[0].content.endswith(RAW)

"""Release tokens: a released copy passes the filter again; a forged one does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from milter.engine import scan
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition
from milter.policy.model import Policy
from milter.quarantine import QuarantineStore
from milter.quarantine.token import TOKEN_HEADER, make_token, released_id
from tests.conftest import EXAMPLES

ENV = Envelope(client_ip="192.0.2.7", mail_from="bounce@lure.example", rcpts=("agent@mairie.fr",))


def _with(token: str, raw: bytes) -> bytes:
    return f"{TOKEN_HEADER}: {token}\r\n".encode() + raw


def test_a_token_names_its_id_only_for_its_key_recipients_and_time(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "q")
    qid = store.put(b"Subject: x\r\n\r\n", ENV, {})
    token = make_token(store.release_key(), qid, ENV.rcpts)
    assert released_id(_with(token, b"Subject: x\r\n\r\n"), ENV) == qid
    other_rcpt = Envelope(rcpts=("attacker@evil.example",))
    assert released_id(_with(token, b"\r\n"), other_rcpt) is None
    forged = make_token(b"k" * 32, qid, ENV.rcpts)  # a key no store of ours holds
    assert released_id(_with(forged, b"\r\n"), ENV) is None
    tampered = token.replace(qid[-1], "0" if qid[-1] != "0" else "1")
    assert released_id(_with(tampered, b"\r\n"), ENV) is None
    old = make_token(store.release_key(), qid, ENV.rcpts, datetime.now(UTC) - timedelta(days=30))
    assert released_id(_with(old, b"\r\n"), ENV) is None
    assert released_id(b"Subject: no token\r\n\r\n", ENV) is None


async def test_the_engine_delivers_a_released_lure_tagged(tmp_path: Path, policy: Policy) -> None:
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    first = await scan(raw, ENV, policy)
    assert first.verdict.disposition is Disposition.QUARANTINE

    store = QuarantineStore(tmp_path / "q")
    qid = store.put(raw, ENV, first.verdict.as_dict())
    token = make_token(store.release_key(), qid, ENV.rcpts)
    again = await scan(_with(token, raw), ENV, policy)
    assert again.verdict.disposition is Disposition.TAG
    assert again.verdict.reasons[0].rule == "released_from_quarantine"
    assert not again.plan.quarantine

    forged = make_token(b"f" * 32, qid, ENV.rcpts)
    assert (await scan(_with(forged, raw), ENV, policy)).verdict.disposition is (
        Disposition.QUARANTINE
    )

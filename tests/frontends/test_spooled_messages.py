"""Large messages through both front-ends: spooled, scanned in place, the spool file gone
after the message whatever happened; past max_message_bytes, scanned on what fits."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

from milter.codec import (
    Accept,
    AddHeader,
    BodyChunk,
    Data,
    Discard,
    EndOfHeaders,
    Header,
    MailFrom,
    Quarantine,
    Rcpt,
    ReplaceBodyChunk,
    ReplyCode,
)
from milter.codec.mta import encode_command
from milter.frontends.service import MessageService
from milter.mime.spool import SpoolConfig
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from milter.quarantine.store import QuarantineStore
from tests.support.fds import open_files_under
from tests.support.milter_client import CHUNK, split_message
from tests.support.smtp_filter import asend, recording_sink, running_filter

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
LURE = (EXAMPLES / "cpf-lure.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
HAM = (EXAMPLES / "legit-notice.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
THRESHOLD = 64 * 1024

Start = Any


def _with_attachment(raw: bytes, size: int) -> bytes:
    """``raw`` (a single-part message) wrapped in multipart/mixed beside a base64 file."""
    head, body = raw.split(b"\r\n\r\n", 1)
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    lines = [f for f in fields if not f.lower().startswith(b"content-")]
    part_head = [f for f in fields if f.lower().startswith(b"content-")]
    data = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    return (
        b"\r\n".join(
            [*lines, b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="zz"']
        )
        + b"\r\n\r\n--zz\r\n"
        + b"\r\n".join(part_head)
        + b"\r\n\r\n"
        + body
        + b"\r\n--zz\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="piece.pdf"\r\n\r\n'
        + data
        + b"--zz--\r\n"
    )


async def _released(directory: Path) -> list[str]:
    """The descriptors left once the server has had the chance to finish (bounded wait)."""
    for _ in range(200):
        if not open_files_under(directory):
            break
        await asyncio.sleep(0.05)
    return open_files_under(directory)


def _service(tmp_path: Path, policy: str = "") -> tuple[MessageService, QuarantineStore]:
    directory = None
    if policy:
        directory = tmp_path / "policies"
        directory.mkdir(exist_ok=True)
        (directory / "local.yaml").write_text(policy)
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    store = QuarantineStore(tmp_path / "quarantine")
    service = MessageService(
        PolicyStore(directory, load_policy(directory)),
        quarantine=store,
        spool=SpoolConfig(spool, threshold_bytes=THRESHOLD),
    )
    return service, store


# -- milter -------------------------------------------------------------------------------
async def test_spooled_lure_is_scanned_and_stored_whole(
    start_milter: Start, tmp_path: Path
) -> None:
    big = _with_attachment(LURE, 600_000)
    service, store = _service(tmp_path)
    async with start_milter(handler=service) as milter:
        client = await milter.client()
        outcome = await client.message(big)
        ham = await client.message(_with_attachment(HAM, 600_000))
        await client.quit()
    assert outcome.final == Discard()  # quarantined in Tocsin's store
    (record,) = store.list()
    stored = store.read_message(record.id)
    assert stored.endswith(big.split(b"\r\n\r\n", 1)[1])  # the whole message, not cut
    assert ham.final == Accept()
    assert any(isinstance(r, AddHeader) and r.name == "X-Tocsin-Verdict" for r in ham.replies)
    assert await _released(tmp_path / "spool") == []


async def test_spooled_lure_that_is_tagged_still_gets_its_banner(
    start_milter: Start, tmp_path: Path
) -> None:
    """A tagged lure with a large attachment is spooled, yet its body gets the banner and
    the attachment comes back whole: being large is not a way around the body edits."""
    tag = (
        "rules:\n  - name: tag-all\n    verdict: tag\n"
        "    before: brand-impersonation\n"
        "    when: {min_severity: high, brand_claimed: true}\n"
    )
    big = _with_attachment(LURE, 600_000)
    service, _store = _service(tmp_path, tag)
    async with start_milter(handler=service) as milter:
        client = await milter.client()
        outcome = await client.message(big)
        await client.quit()
    assert outcome.final == Accept()
    body = b"".join(r.data for r in outcome.replies if isinstance(r, ReplaceBodyChunk))
    assert b"tocsin-banner" in body or b"[Tocsin]" in body
    attachment = big.rsplit(b'filename="piece.pdf"\r\n\r\n', 1)[1]
    assert attachment in body
    assert await _released(tmp_path / "spool") == []


async def test_spool_released_when_the_scan_fails(start_milter: Start, tmp_path: Path) -> None:
    async with start_milter(handler=_service(tmp_path)[0], eom_deadline_seconds=0.001) as milter:
        client = await milter.client()
        outcome = await client.message(_with_attachment(HAM, 600_000))
        await client.quit()
    assert isinstance(outcome.final, ReplyCode)
    assert outcome.final.code // 100 == 4
    assert await _released(tmp_path / "spool") == []


async def test_spool_released_when_the_mta_leaves_mid_message(
    start_milter: Start, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    headers, body = split_message(_with_attachment(HAM, 600_000))
    async with start_milter(handler=_service(tmp_path)[0]) as milter:
        client = await milter.client()
        steps = [MailFrom("<a@example.org>"), Rcpt("<b@example.net>"), Data()]
        steps += [Header(name, value) for name, value in headers]
        steps += [EndOfHeaders()]
        steps += [BodyChunk(body[i : i + CHUNK]) for i in range(0, 4 * CHUNK, CHUNK)]
        for step in steps:
            client.send_raw(encode_command(step))
        for _ in range(200):  # the server has spooled what it read
            if open_files_under(spool):
                break
            await asyncio.sleep(0.05)
        assert open_files_under(spool)
        await client.quit()  # QUIT mid-message, then close
        assert await _released(spool) == []


async def test_oversize_lure_is_scanned_on_what_fits_and_held(
    start_milter: Start, tmp_path: Path
) -> None:
    """#17: past max_message_bytes the first bytes are scanned (a padded lure is caught);
    the cut message is held by the MTA (milter QUARANTINE), never stored cut."""
    service, store = _service(tmp_path, "limits:\n  max_message_bytes: 131072\n")
    async with start_milter(handler=service) as milter:
        client = await milter.client()
        outcome = await client.message(_with_attachment(LURE, 400_000))
        await client.quit()
    assert [r for r in outcome.replies if isinstance(r, Quarantine)]
    verdict = next(r for r in outcome.replies if isinstance(r, AddHeader))
    assert "limits=size" in verdict.value
    assert store.list() == []
    assert await _released(tmp_path / "spool") == []


# -- SMTP filter ----------------------------------------------------------------------------
async def test_smtp_spooled_message_is_relayed_whole_and_released(tmp_path: Path) -> None:
    big = _with_attachment(HAM, 600_000)
    async with recording_sink() as sink:
        service, _ = _service(tmp_path)
        async with running_filter(tmp_path, sink.port, service=service) as running:
            sent = await asend(running.port, big)
            assert await _released(tmp_path / "spool") == []
    assert sent.data is not None
    assert sent.data[0] == 250
    (received,) = sink.messages
    assert received.content.endswith(big.split(b"\r\n\r\n", 1)[1])
    assert b"X-Tocsin-Verdict:" in received.content


async def test_smtp_oversize_lure_is_scanned_on_what_fits(tmp_path: Path) -> None:
    """The SMTP filter keeps the whole message (it relays it), scans the first
    max_message_bytes, and stores the whole lure in quarantine."""
    big = _with_attachment(LURE, 400_000)
    async with recording_sink() as sink:
        service, store = _service(tmp_path, "limits:\n  max_message_bytes: 131072\n")
        async with running_filter(tmp_path, sink.port, service=service) as running:
            sent = await asend(running.port, big)
    assert sent.data is not None
    assert sent.data[0] == 250
    assert sink.messages == []
    (record,) = store.list()
    assert "LIMIT_EXCEEDED" in str(record.verdict)
    assert store.read_message(record.id).endswith(big.split(b"\r\n\r\n", 1)[1])
    assert await _released(tmp_path / "spool") == []

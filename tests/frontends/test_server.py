"""The milter server over a real loopback socket, driven by the Postfix-like client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from milter.codec import (
    Accept,
    AddHeader,
    ChangeHeader,
    Discard,
    InsertHeader,
    ProtocolFlag,
    Quarantine,
    ReplaceBodyChunk,
    ReplyCode,
)
from milter.codec.frames import encode_frame
from milter.frontends.milter.assemble import AssemblyLimits
from milter.frontends.milter.connection import QUICKACK
from milter.frontends.milter.session import NO_REPLY_PROTOCOL, REQUESTED_PROTOCOL, MilterSession
from milter.frontends.service import MessageRequest, MessageService
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from tests.support.milter_client import MilterClient, MilterClosed

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
LURE = (EXAMPLES / "cpf-lure.eml").read_bytes()
HAM = (EXAMPLES / "legit-notice.eml").read_bytes()
Start = Callable[..., Any]


async def test_ham_gets_only_the_verdict_header(start_milter: Start) -> None:
    async with start_milter() as milter:
        client = await milter.client()
        outcome = await client.message(HAM)
        await client.quit()
    assert outcome.final == Accept()
    assert not any(isinstance(r, ReplaceBodyChunk) for r in outcome.replies)
    added = [r for r in outcome.edits() if isinstance(r, AddHeader)]
    assert [r.name for r in added] == ["X-Tocsin-Verdict"]
    assert added[0].value.startswith(" v=1; verdict=accept")


async def test_lure_is_stored_durably_then_discarded(start_milter: Start) -> None:
    async with start_milter() as milter:
        client = await milter.client()
        outcome = await client.message(LURE, mail_from="", rcpts=("a@x.test", "b@x.test"))
        await client.quit()
        records = milter.store.list()
    assert outcome.replies == [Discard()]
    assert len(records) == 1
    record = records[0]
    assert milter.store.read_message(record.id) == LURE.replace(b"\n", b"\r\n").replace(
        b"\r\r\n", b"\r\n"
    )
    assert record.envelope.rcpts == ("a@x.test", "b@x.test")
    assert record.envelope.mail_from == ""
    assert record.envelope.queue_id == "4ABCDEF123"
    assert record.verdict["brand"] == "cpf"


async def test_hold_mode_asks_postfix_to_hold(start_milter: Start, policy_dir: Any) -> None:
    directory = policy_dir("actions:\n  quarantine_store: hold\n")
    async with start_milter(policy_dir=directory) as milter:
        client = await milter.client()
        outcome = await client.message(LURE)
        await client.quit()
        assert milter.store.list() == []
    holds = [r for r in outcome.replies if isinstance(r, Quarantine)]
    assert len(holds) == 1
    assert outcome.final == Accept()
    assert outcome.replies.index(holds[0]) == len(outcome.replies) - 2


async def test_tag_banner_replaces_the_body_and_tags_the_subject(
    start_milter: Start, policy_dir: Any
) -> None:
    directory = policy_dir(
        "rules:\n  - name: tag-all\n    verdict: tag\n"
        "    before: brand-impersonation\n"
        "    when: {min_severity: high, brand_claimed: true}\n"
    )
    async with start_milter(policy_dir=directory) as milter:
        client = await milter.client()
        outcome = await client.message(LURE)
        await client.quit()
    body = b"".join(r.data for r in outcome.replies if isinstance(r, ReplaceBodyChunk))
    assert b"tocsin-banner" in body or b"[Tocsin]" in body
    subject = [r for r in outcome.replies if isinstance(r, ChangeHeader) and r.name == "Subject"]
    assert subject
    assert subject[0].value.startswith(" [SUSPECT]")
    assert outcome.final == Accept()


async def test_reject_policy_gives_the_configured_reply(
    start_milter: Start, policy_dir: Any
) -> None:
    directory = policy_dir(
        "rules:\n  - name: refuse\n    verdict: reject\n"
        "    before: brand-impersonation\n"
        "    when: {min_severity: high, brand_claimed: true}\n"
    )
    async with start_milter(policy_dir=directory) as milter:
        client = await milter.client()
        outcome = await client.message(LURE)
        ham = await client.message(HAM)  # same connection, next message
        await client.quit()
    assert outcome.replies == [
        ReplyCode(550, "5.7.1 Message refused: impersonation of a protected sender")
    ]
    assert ham.final == Accept()


class _Failing(MessageService):
    async def handle(self, request: MessageRequest, *, can_hold: bool = True) -> Any:
        raise RuntimeError("boom")


class _Slow(MessageService):
    async def handle(self, request: MessageRequest, *, can_hold: bool = True) -> Any:
        await asyncio.sleep(5)
        raise AssertionError("the deadline should have cut this")


@pytest.mark.parametrize("on_failure", ["tempfail", "accept"])
async def test_engine_failure_follows_on_failure(start_milter: Start, on_failure: str) -> None:
    handler = _Failing(PolicyStore(None, load_policy(None)))
    async with start_milter(handler=handler, on_failure=on_failure) as milter:
        client = await milter.client()
        outcome = await client.message(HAM)
        again = await client.message(HAM)  # the connection survives
        await client.quit()
    if on_failure == "tempfail":
        assert outcome.replies == [
            ReplyCode(451, "4.7.1 Message could not be checked, try again later")
        ]
    else:
        assert outcome.replies == [Accept()]  # passed on unchanged
    assert type(again.final) is type(outcome.final)


async def test_deadline_sends_progress_then_tempfails(start_milter: Start) -> None:
    handler = _Slow(PolicyStore(None, load_policy(None)))
    async with start_milter(
        handler=handler, eom_deadline_seconds=0.5, progress_interval_seconds=0.1
    ) as milter:
        client = await milter.client()
        outcome = await client.message(HAM)
        await client.quit()
    assert outcome.progress >= 3
    assert isinstance(outcome.final, ReplyCode)
    assert outcome.final.code == 451


async def test_quarantine_store_failure_tempfails(start_milter: Start, monkeypatch: Any) -> None:
    async with start_milter() as milter:

        def full_disk(*args: Any) -> str:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(milter.store, "put", full_disk)
        client = await milter.client()
        outcome = await client.message(LURE)
        await client.quit()
    assert isinstance(outcome.final, ReplyCode)
    assert outcome.final.code == 451


async def test_garbage_closes_that_connection_only(start_milter: Start) -> None:
    async with start_milter() as milter:
        bad = await MilterClient.open(port=milter.port)
        bad.send_raw(encode_frame(b"O", b"\x00\x00\x00\x06") + b"\xff" * 64)
        assert await asyncio.wait_for(bad.read_raw(), 5) == b""
        oversized = await MilterClient.open(port=milter.port)
        oversized.send_raw((50 * 1024 * 1024).to_bytes(4, "big") + b"O")
        assert await asyncio.wait_for(oversized.read_raw(), 5) == b""
        good = await milter.client()
        assert (await good.message(HAM)).final == Accept()
        await good.quit()


async def test_abort_then_new_message_starts_clean(start_milter: Start) -> None:
    async with start_milter() as milter:
        client = await milter.client()
        # a transaction aborted after the headers: the next message must not inherit them
        from milter.codec import Header, MailFrom, Rcpt

        await client._command(MailFrom("<x@y.test>"))
        await client._command(Rcpt("<r@y.test>"))
        await client._command(Header("Subject", " leftover"))
        await client.abort()
        outcome = await client.message(LURE, mail_from="", rcpts=("z@x.test",))
        await client.quit()
        record = milter.store.list()[0]
    assert outcome.replies == [Discard()]
    assert b"leftover" not in milter.store.read_message(record.id)
    assert record.envelope.rcpts == ("z@x.test",)


async def test_oversize_message_follows_the_policy(start_milter: Start, policy_dir: Any) -> None:
    directory = policy_dir("limits:\n  max_message_bytes: 65536\n  oversize: reject\n")
    big = HAM + b"x" * 100 + b"\r\n" * 40000
    async with start_milter(policy_dir=directory) as milter:
        client = await milter.client()
        outcome = await client.message(big)
        await client.quit()
    assert isinstance(outcome.final, ReplyCode)
    assert outcome.final.code == 552


async def test_oversize_accept_adds_a_not_scanned_verdict(
    start_milter: Start, policy_dir: Any
) -> None:
    directory = policy_dir("limits:\n  max_message_bytes: 65536\n  oversize: accept\n")
    big = b"X-Tocsin-Verdict: forged\r\n" + HAM + b"\r\n" * 40000
    async with start_milter(policy_dir=directory) as milter:
        client = await milter.client()
        outcome = await client.message(big)
        await client.quit()
    assert outcome.final == Accept()
    assert ChangeHeader(1, "X-Tocsin-Verdict", "") in outcome.replies
    added = [r for r in outcome.replies if isinstance(r, AddHeader)]
    assert "rule=oversize" in added[0].value


async def test_connection_limit_refuses_extra_connections(start_milter: Start) -> None:
    async with start_milter(max_connections=1) as milter:
        first = await milter.client()
        extra = await MilterClient.open(port=milter.port)
        with pytest.raises((MilterClosed, ConnectionError)):
            await extra.negotiate()
        assert (await first.message(HAM)).final == Accept()
        await first.quit()


async def test_idle_connections_are_closed(start_milter: Start) -> None:
    async with start_milter(idle_timeout_seconds=0.3) as milter:
        client = await milter.client()
        await asyncio.sleep(0.8)
        with pytest.raises((MilterClosed, ConnectionError)):
            await client.message(HAM)


async def test_stop_finishes_the_message_in_progress(start_milter: Start) -> None:
    class _Gate(MessageService):
        entered = asyncio.Event()

        async def handle(self, request: MessageRequest, *, can_hold: bool = True) -> Any:
            self.entered.set()
            await asyncio.sleep(0.3)
            return await super().handle(request, can_hold=can_hold)

    handler = _Gate(PolicyStore(None, load_policy(None)))
    async with start_milter(handler=handler) as milter:
        client = await milter.client()
        idle = await milter.client()
        pending = asyncio.create_task(client.message(HAM))
        await handler.entered.wait()
        milter.server.request_stop()
        outcome = await pending
        assert outcome.final == Accept()
        assert await asyncio.wait_for(idle.read_raw(), 5) == b""  # idle one closed at once


async def test_unix_socket(start_milter: Start) -> None:
    async with start_milter(unix=True) as milter:
        client = await milter.client()
        outcome = await client.message(HAM)
        await client.quit()
    assert outcome.final == Accept()


async def test_authentication_results_inserted_below_the_mta_received(
    start_milter: Start,
) -> None:
    async with start_milter() as milter:
        client = await milter.client()
        outcome = await client.message(
            b"Authentication-Results: tocsin.invalid; spf=pass\r\n" + HAM
        )
        await client.quit()
    # the forged A-R carrying our authserv-id is deleted
    assert ChangeHeader(1, "Authentication-Results", "") in outcome.replies
    inserts = [r for r in outcome.replies if isinstance(r, InsertHeader)]
    assert all(r.index >= 1 for r in inserts)


ENVELOPE_NR = (
    ProtocolFlag.NR_HELO
    | ProtocolFlag.NR_MAIL
    | ProtocolFlag.NR_RCPT
    | ProtocolFlag.NR_DATA
    | ProtocolFlag.NR_EOH
    | ProtocolFlag.NR_BODY
)


@pytest.mark.parametrize("unix", [False, True])
async def test_events_stream_without_replies_when_we_ack_at_once(
    start_milter: Start, unix: bool
) -> None:
    """Over a Unix socket (no delayed ACK) or TCP with TCP_QUICKACK (Linux), every event
    up to the end of message is negotiated without a reply except CONNECT (the per-client
    cap answers there); a lure and a ham message are still answered right."""
    async with start_milter(unix=unix) as milter:
        client = await milter.client()
        agreed = client.protocol
        lure = await client.message(LURE)
        ham = await client.message(HAM)
        await client.quit()
    if unix or QUICKACK is not None:
        assert ENVELOPE_NR in agreed
    else:
        assert not agreed & ENVELOPE_NR
    assert ProtocolFlag.NR_HDR in agreed
    assert ProtocolFlag.NR_CONN not in agreed
    assert ProtocolFlag.NODATA not in agreed
    assert isinstance(lure.final, Discard)
    assert ham.final == Accept()


def test_without_quick_acks_only_headers_go_unanswered() -> None:
    from milter.codec import ActionFlag, OptNeg

    offer = OptNeg(6, ActionFlag(0x1FF), ProtocolFlag(0x1FFFFF))
    safe = MilterSession(AssemblyLimits()).negotiate(offer)
    assert safe.protocol == REQUESTED_PROTOCOL
    streaming = MilterSession(AssemblyLimits(), NO_REPLY_PROTOCOL).negotiate(offer)
    assert streaming.protocol == REQUESTED_PROTOCOL | ENVELOPE_NR

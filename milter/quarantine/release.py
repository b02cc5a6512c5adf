"""Release: re-inject a held message to the MTA with its original envelope.

The record is marked released (or deleted) only after the relay answered 2xx to the
end of DATA; works on any ``QuarantineBackend`` through its claim/finish transition.
Any refusal or error leaves the message held and raises ``ReleaseError`` carrying the
SMTP reply; every attempt, failed or not, is kept in the record's history and audited,
so a failed release is never silent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Protocol

import aiosmtplib

from milter.quarantine.backend import AuditEntry, QuarantineBackend, ReleaseClaim
from milter.quarantine.errors import QuarantineError
from milter.quarantine.token import TOKEN_HEADER, make_token
from milter.text.headers import split_message

RELEASED_HEADER = "X-Tocsin-Released"
DEFAULT_RELAY = ("127.0.0.1", 10026)


class ReleaseError(QuarantineError):
    """The relay did not take the message; it is still held.

    Attributes:
        code: SMTP reply code when the relay gave one, else None (connection error).
        temporary: True for 4xx replies and network errors (worth retrying).
        refused: recipients the relay refused, with its reply to each.
    """

    def __init__(
        self,
        message: str,
        code: int | None = None,
        temporary: bool = True,
        refused: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.temporary = temporary
        self.refused = dict(refused or {})


class ReleaseTransform(Protocol):
    """The body to release instead of the held one, or None to release it as held.

    Given the held message, the verdict its record stored, its envelope recipients and
    whether the admin says the hold was a false positive. The engine knows how (the
    banner stays on a message held for impersonation); this package may not import it,
    so ``tocsin quarantine`` and ``tocsin review`` inject one
    (``milter.cli.release_banner``).
    """

    def __call__(
        self,
        raw: bytes,
        verdict: Mapping[str, Any],
        rcpts: tuple[str, ...],
        *,
        false_positive: bool,
    ) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """A successful release: the relay's reply and what happened to the record.

    ``edited``: the body released was the transform's (the banner), not the held one.
    """

    qid: str
    relay: str
    reply: str
    deleted: bool
    released_at: datetime
    attempts: int = 1
    edited: bool = False


def released_header(
    qid: str, when: datetime, newline: bytes = b"\r\n", token: str | None = None
) -> bytes:
    """``X-Tocsin-Released: <id>; <RFC 5322 date>`` (and the release token header when
    given) with the message's line ending."""
    date = format_datetime(when.astimezone(UTC), usegmt=True)
    lines = [f"{RELEASED_HEADER}: {qid}; {date}"]
    if token is not None:
        lines.append(f"{TOKEN_HEADER}: {token}")
    return b"".join(line.encode("ascii") + newline for line in lines)


def _newline(raw: bytes) -> bytes:
    first = raw.find(b"\n")
    return b"\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else b"\n"


_EIGHT_BIT = re.compile(rb"[\x80-\xff]")


@dataclass(frozen=True, slots=True)
class _Relay:
    host: str
    port: int
    smtp_timeout: float
    local_hostname: str | None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


async def _transaction(
    relay: _Relay, message: bytes, mail_from: str, rcpts: tuple[str, ...]
) -> str:
    """One SMTP transaction; returns the final reply or raises ReleaseError."""
    smtp = aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        start_tls=False,
        use_tls=False,
        timeout=relay.smtp_timeout,
        local_hostname=relay.local_hostname,
    )
    try:
        await smtp.connect()
        await smtp.ehlo()
        utf8 = any(not a.isascii() for a in (mail_from, *rcpts))
        if utf8 and not smtp.supports_extension("smtputf8"):
            raise ReleaseError("the relay does not offer SMTPUTF8, needed here", temporary=False)
        encoding = "utf-8" if utf8 else "ascii"
        options = ["SMTPUTF8"] if utf8 else []
        if _EIGHT_BIT.search(message) and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        await smtp.mail(mail_from, options=options, encoding=encoding)
        refused: dict[str, str] = {}
        for rcpt in rcpts:
            try:
                await smtp.rcpt(rcpt, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused[rcpt] = f"{exc.code} {exc.message}"
        if refused:
            await smtp.rset()
            temporary = all(r.startswith("4") for r in refused.values())
            listing = "; ".join(f"<{r}>: {reply}" for r, reply in refused.items())
            raise ReleaseError(f"recipient(s) refused: {listing}", None, temporary, refused)
        response = await smtp.data(message)
        return f"{response.code} {response.message}"
    except aiosmtplib.SMTPResponseException as exc:
        raise ReleaseError(
            f"relay said {exc.code} {exc.message}", exc.code, 400 <= exc.code < 500
        ) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise ReleaseError(f"cannot talk to relay {relay.name}: {exc}") from None
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                smtp.close()


async def release(
    store: QuarantineBackend,
    qid: str,
    relay_host: str = DEFAULT_RELAY[0],
    relay_port: int = DEFAULT_RELAY[1],
    *,
    delete: bool = False,
    force: bool = False,
    smtp_timeout: float = 60.0,
    retries: int = 0,
    retry_delay: float = 5.0,
    local_hostname: str | None = None,
    actor: str = "-",
    transform: ReleaseTransform | None = None,
    false_positive: bool = False,
) -> ReleaseResult:
    """Re-inject held message ``qid`` to ``relay_host:relay_port``.

    The original envelope is replayed (MAIL FROM, null sender included, and every
    recipient) with explicit MAIL/RCPT/DATA, no STARTTLS, and prepended
    ``X-Tocsin-Released`` and ``X-Tocsin-Release-Token`` headers (the token lets the
    copy through the filter again, see ``token.py``). If any recipient is refused
    nothing is sent. Only after the relay accepted the data (2xx) is the record marked
    released (or deleted when ``delete``); anything else puts it back to held. Temporary
    failures (4xx, network) are retried ``retries`` times. Every attempt is audited as
    ``actor``. ``transform`` (with ``false_positive``) may replace the body, e.g. to keep
    the warning banner on an impersonation; if it fails the message stays held.

    Raises ReleaseError (message still held), QuarantineNotFound, QuarantineBusy
    (another release in progress), QuarantineConflict (already released, or an
    interrupted release; ``force`` overrides) or QuarantineError (storage).
    """
    relay = _Relay(relay_host, relay_port, smtp_timeout, local_hostname)
    claim = store.claim_release(qid, actor, force=force)
    record = claim.record
    try:
        if not record.envelope.rcpts:
            raise ReleaseError(f"{qid} has no envelope recipient", temporary=False)
        raw = store.read_message(qid)
        edited = _transformed(raw, record.verdict, record.envelope.rcpts, transform, false_positive)
    except QuarantineError as exc:
        _finish(store, claim, _attempt("", datetime.now(UTC), False, str(exc)), False, False)
        raise
    if edited is not None:
        raw = edited
    mail_from = record.envelope.mail_from or ""  # None (unknown) → null sender
    tries = 0
    while True:
        tries += 1
        now = datetime.now(UTC)
        token = make_token(store.release_key(), qid, record.envelope.rcpts, now)
        message = released_header(qid, now, _newline(raw), token) + raw
        try:
            reply = await _transaction(relay, message, mail_from, record.envelope.rcpts)
        except ReleaseError as exc:
            attempt = _attempt(relay.name, now, False, str(exc), exc.refused)
            if exc.temporary and tries <= retries:
                _note_failure(store, claim, attempt, exc)
                await asyncio.sleep(retry_delay)
                continue
            _finish(store, claim, attempt, False, False)
            raise
        except BaseException:
            # Cancelled or crashed mid-transaction: the relay may have the message.
            # Stay "releasing" so only an explicit force can send it again.
            store.abandon(claim)
            raise
        break
    _finish(store, claim, _attempt(relay.name, now, True, reply), True, delete)
    return ReleaseResult(qid, relay.name, reply, delete, now, tries, edited is not None)


def _transformed(
    raw: bytes,
    verdict: Mapping[str, Any],
    rcpts: tuple[str, ...],
    transform: ReleaseTransform | None,
    false_positive: bool,
) -> bytes | None:
    """The whole message to release when ``transform`` gives a new body, else None."""
    if transform is None:
        return None
    try:
        body = transform(raw, verdict, rcpts, false_positive=false_positive)
    except Exception as exc:  # noqa: BLE001 - engine code on attacker bytes: keep it held
        raise ReleaseError(
            f"cannot add the warning banner ({type(exc).__name__}: {exc}); still held "
            "(release it as a false positive to deliver it unchanged)",
            temporary=False,
        ) from None
    return None if body is None else split_message(raw)[0] + body


def _attempt(
    relay: str, when: datetime, ok: bool, reply: str, refused: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "at": when.isoformat(),
        "relay": relay,
        "ok": ok,
        "reply": reply,
        "refused": refused or {},
    }


def _note_failure(
    store: QuarantineBackend, claim: ReleaseClaim, attempt: dict[str, Any], exc: ReleaseError
) -> None:
    """Record a failed attempt that will be retried; a storage error must not mask it."""
    try:
        store.record_attempt(claim, attempt)
        store.record_action(
            AuditEntry.now(claim.actor, "release", claim.qid, "failed", attempt["reply"])
        )
    except QuarantineError as storage:
        exc.add_note(f"(the failed attempt could not be recorded: {storage})")


def _finish(
    store: QuarantineBackend,
    claim: ReleaseClaim,
    attempt: dict[str, Any],
    accepted: bool,
    delete: bool,
) -> None:
    """Close the claim: released/deleted after a 2xx, held again otherwise; audit it."""
    try:
        store.finish_release(claim, attempt, accepted=accepted, delete=delete)
        result = "ok" if accepted else "failed"
        store.record_action(
            AuditEntry.now(claim.actor, "release", claim.qid, result, str(attempt["reply"]))
        )
    except QuarantineError as exc:
        if not accepted:
            raise
        raise QuarantineError(
            f"{claim.qid} was accepted by {attempt['relay']} ({attempt['reply']}) but the "
            f"record could not be updated: {exc}; releasing it again would deliver a second copy"
        ) from None

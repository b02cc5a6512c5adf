"""The next hop: an aiosmtplib session per transaction, the envelope passed on unchanged.

MAIL and each RCPT go to the next hop as the client sends them, so its answer to each is
mirrored to the client (before-queue, the real sender sees the real answer per recipient).
DATA goes only after the engine decided; a message not delivered is abandoned with RSET.

Sessions are kept open between transactions (`NextHopPool`): connecting, the greeting,
EHLO and QUIT were 3-4 round trips and an aiosmtplib set-up per message. A kept session
whose transaction was abandoned gets RSET before its next MAIL. A kept session that fails
before its MAIL is accepted (the next hop closed it while idle) is dropped and the
transaction starts again on a new one: nothing was accepted on it, so nothing is lost or
sent twice. Past that point a failure is mirrored (451) as on a new session. A session
cut with a command in flight (cancelled: the deadline, our client hanging up) is closed,
never kept: the next transaction on it would read that answer as its own.

The next hop's smtpd keeps per-session counters that must not carry from one client's
transaction to another's: a session that mirrored a 4xx/5xx is not kept (Postfix counts
errors: 1 s sleeps past 10, 421 past 20), nor one with many junk commands since its last
delivered message (EHLO, RSET and XFORWARD count); and sessions are retired by use count
and age, idle ones by a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

from milter.frontends.smtp.params import Params, xforward_lines

log = logging.getLogger("tocsin.smtp")

StartTls = Literal["no", "opportunistic", "required"]
UNREACHABLE = "451 4.4.1 Next hop not reachable, try again later"
TIMED_OUT = "451 4.4.2 Next hop timed out, try again later"


@dataclass(frozen=True, slots=True)
class NextHopConfig:
    """Where and how to reach the next hop."""

    host: str
    port: int
    local_hostname: str
    timeout_seconds: float = 60.0
    starttls: StartTls = "no"
    xforward: bool = True


class NextHopRefused(Exception):
    """The next hop did not take the message (or could not be reached): ``reply`` is
    the SMTP answer to mirror to our client, always 4xx or 5xx."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply

    @property
    def permanent(self) -> bool:
        """True for a 5xx answer."""
        return self.reply.startswith("5")


class _Stale(Exception):
    """A kept session failed before anything was accepted on it: start on a new one."""


JUNK_BUDGET = 50
"""Postfix's smtpd counts EHLO, RSET and XFORWARD against ``smtpd_junk_command_limit``
(100), forgiven by each message it takes; past the limit each one is an error (10 errors:
a 1 s sleep before every answer, 20: 421). A session whose count since its last delivered
message is over this budget (half the limit: room for the next transaction's) is not kept."""


@dataclass(slots=True, eq=False)
class _Session:
    """A session with the next hop, and what its smtpd counts of it."""

    smtp: aiosmtplib.SMTP
    opened: float  # the pool's clock at connect
    transactions: int = 0  # MAIL commands sent on it
    junk: int = 1  # EHLO, RSET, XFORWARD sent since its last delivered message
    dirty: bool = False  # a transaction begun and not ended by a 250 to DATA: RSET first
    expires: float = 0.0  # while kept: when it is no longer taken (idle or age)


class NextHopPool:
    """Idle sessions with the next hop, kept for the next transaction (one pool per worker).

    At most ``size`` are kept, each for at most ``idle_seconds`` (under the next hop's own
    idle timeout: Postfix's smtpd waits 300 s), closed by a timer when that passes; the
    most recently used is taken first. A session serves at most ``max_transactions``, and
    none starts on it past ``max_age_seconds`` from its connect (Postfix's own
    smtp_connection_reuse_count_limit and smtp_connection_reuse_time_limit); nor is one
    kept whose next hop counts too many junk commands of it (`JUNK_BUDGET`).
    """

    def __init__(
        self,
        size: int,
        idle_seconds: float,
        *,
        max_transactions: int = 100,
        max_age_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.idle_seconds = idle_seconds
        self.max_transactions = max_transactions
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._idle: list[_Session] = []  # in the order given back; the last is taken first
        self._closing: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def take(self) -> _Session | None:
        """A kept session (``dirty``: it needs RSET first), or None."""
        now = self.clock()
        while self._idle:
            session = self._idle.pop()
            if session.smtp.is_connected and now < session.expires:
                return session
            self._quit(session.smtp)
        return None

    def give_back(self, session: _Session) -> bool:
        """Keep ``session`` for a later transaction; False when the pool is full (or off)
        or the session is spent (transactions, age, junk count): the caller ends it."""
        now = self.clock()
        expires = min(now + self.idle_seconds, session.opened + self.max_age_seconds)
        if (
            len(self._idle) >= self.size
            or not session.smtp.is_connected
            or session.transactions >= self.max_transactions
            or session.junk > JUNK_BUDGET
            or expires <= now
        ):
            return False
        session.expires = expires
        self._idle.append(session)
        self._arm()
        return True

    def _arm(self) -> None:
        """Have `_sweep` run when the first kept session expires."""
        if not self._idle:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, min(s.expires for s in self._idle) - self.clock())
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        self._timer = loop.call_at(due, self._sweep)

    def _sweep(self) -> None:
        """QUIT the kept sessions past their time, each holding one of the next hop's
        smtpd processes (taking only the newest would leave the oldest there for good)."""
        self._timer = None
        now = self.clock()
        kept = []
        for session in self._idle:
            if session.smtp.is_connected and now < session.expires:
                kept.append(session)
            else:
                self._quit(session.smtp)
        self._idle = kept
        self._arm()

    def _quit(self, smtp: aiosmtplib.SMTP) -> None:
        """Say QUIT in the background (the next hop logs a clean end, nobody waits)."""
        task = asyncio.get_running_loop().create_task(_quit(smtp, 10.0))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @property
    def idle(self) -> int:
        """Sessions kept now."""
        return len(self._idle)

    async def close(self) -> None:
        """QUIT every kept session (the server is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        idle, self._idle = self._idle, []
        for session in idle:
            self._quit(session.smtp)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


class NextHop:
    """One transaction with the next hop: open (MAIL), recipients, then send or abandon."""

    def __init__(self, config: NextHopConfig, pool: NextHopPool | None = None) -> None:
        self.config = config
        self.pool = pool
        self._session: _Session | None = None
        self._broken = False  # the session cannot be trusted with another transaction
        self._refused = False  # it answered 4xx/5xx: its smtpd counted an error, not kept

    @property
    def extensions(self) -> set[str]:
        """The ESMTP keywords the next hop offered (lower-case)."""
        return set(self._session.smtp.esmtp_extensions) if self._session else set()

    async def open(
        self, sender: str, params: Params, xforward: dict[str, str], *, utf8: bool
    ) -> None:
        """Pass the client on (XFORWARD) and send MAIL FROM, on a kept session or on a
        new one (connect, EHLO)."""
        kept = self.pool.take() if self.pool is not None else None
        if kept is not None:
            self._session = kept
            try:
                await self._begin(kept, sender, params, xforward, utf8, kept=True)
                return
            except _Stale:
                log.info("next hop: a kept session had ended, starting a new one")
                kept.smtp.close()
        config = self.config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            local_hostname=config.local_hostname,
            timeout=config.timeout_seconds,
            start_tls={"no": False, "opportunistic": None, "required": True}[config.starttls],
            validate_certs=config.starttls == "required",
        )
        session = _Session(smtp, self.pool.clock() if self.pool is not None else 0.0)
        self._session = session
        self._broken = self._refused = False
        async with self._mirrored():
            await smtp.connect()
            await smtp.ehlo()
        await self._begin(session, sender, params, xforward, utf8, kept=False)

    async def _begin(
        self,
        session: _Session,
        sender: str,
        params: Params,
        xforward: dict[str, str],
        utf8: bool,
        *,
        kept: bool,
    ) -> None:
        """(RSET,) XFORWARD and MAIL FROM. On a ``kept`` session, the session failing
        (closed, 421, RSET refused) raises _Stale: nothing was accepted on it yet."""
        smtp = session.smtp
        if session.dirty:
            session.junk += 1
            try:
                await smtp.rset()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self._broken = True
                raise _Stale from None
            except BaseException:  # cancelled with RSET in flight: its answer would be read
                self._broken = True  # as the next command's
                raise
        async with self._mirrored(stale=kept):
            offered = smtp.esmtp_extensions.get("xforward")
            if self.config.xforward and offered is not None and xforward:
                for line in xforward_lines(xforward, offered.split()):
                    session.junk += 1
                    answer = await smtp.execute_command(b"XFORWARD", line.encode("ascii"))
                    if answer.code == 421:
                        raise aiosmtplib.SMTPResponseException(answer.code, answer.message)
                    if answer.code != 250:
                        self._refused = True
                        log.warning("next hop refused XFORWARD: %s", answer)
            options = params.for_next_hop(smtp.esmtp_extensions)
            session.dirty = True
            session.transactions += 1
            await smtp.mail(sender, options=options, encoding=_encoding(utf8))

    async def recipient(self, rcpt: str, params: Params, *, utf8: bool) -> str:
        """RCPT TO; the next hop's answer (a 2xx) or NextHopRefused."""
        smtp = self._live().smtp
        async with self._mirrored():
            options = params.for_next_hop(smtp.esmtp_extensions)
            answer = await smtp.rcpt(rcpt, options=options, encoding=_encoding(utf8))
        return f"{answer.code} {_one_line(answer.message)}"

    async def send(self, message: bytes) -> str:
        """DATA; the next hop's 250 answer, or NextHopRefused with its 4xx/5xx."""
        session = self._live()
        async with self._mirrored():
            answer = await session.smtp.data(message)
        session.dirty = False  # the transaction is over: the session is clean again
        session.junk = 0  # and its smtpd forgave the junk commands
        return f"{answer.code} {_one_line(answer.message)}"

    async def close(self) -> None:
        """End the transaction: keep the session for the next one (an unfinished
        transaction is abandoned with RSET before it), or QUIT; a broken session is
        closed at once."""
        session, self._session = self._session, None
        if session is None or not session.smtp.is_connected:
            return
        if self._broken:  # it may still owe an answer (or be out of step): no QUIT either
            _abort(session.smtp)
            return
        pool = None if self._refused else self.pool
        if pool is not None and pool.give_back(session):
            return
        await _quit(session.smtp, min(self.config.timeout_seconds, 10.0))

    def drop(self) -> None:
        """Close at once (our client is gone): the next hop discards the transaction."""
        session, self._session = self._session, None
        if session is not None:
            _abort(session.smtp)

    def _live(self) -> _Session:
        if self._session is None or not self._session.smtp.is_connected:
            raise NextHopRefused(UNREACHABLE)
        if self._broken:  # cut with a command in flight: its answers are out of step now
            raise NextHopRefused(TIMED_OUT)
        return self._session

    @contextlib.asynccontextmanager
    async def _mirrored(self, *, stale: bool = False) -> AsyncIterator[None]:
        """Turn aiosmtplib's errors into the reply to mirror (never a 2xx, never a 421);
        a session that failed is not kept. With ``stale`` (a kept session, before MAIL was
        accepted), a failure of the session itself raises _Stale instead.

        Anything else ending the step (cancellation: the deadline, our client hanging up;
        a bug) leaves its command in flight: the session is broken, never kept, since the
        next transaction on it would read that answer as its own (and every later one a
        command late)."""
        try:
            yield
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 600 and exc.code != 421:  # its answer: mirrored
                self._refused = True
                raise NextHopRefused(f"{exc.code} {_one_line(exc.message)}") from None
            self._broken = True
            if stale:
                raise _Stale from None
            raise NextHopRefused(UNREACHABLE) from None
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            self._broken = True
            raise NextHopRefused(TIMED_OUT) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._broken = True
            if stale:
                raise _Stale from None
            log.warning("next hop: %s", exc)
            raise NextHopRefused(UNREACHABLE) from None
        except BaseException:
            self._broken = True
            raise


async def _quit(smtp: aiosmtplib.SMTP, seconds: float) -> None:
    """QUIT, or close when the next hop does not answer."""
    try:
        await smtp.quit(timeout=seconds)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        smtp.close()
    except BaseException:
        smtp.close()
        raise


def _abort(smtp: aiosmtplib.SMTP) -> None:
    """Close at once, dropping what is not sent yet: the rest of a message cut short (its
    final dot last) must not reach the next hop after our client heard 451 or nothing
    (a plain close sends it all first, and the next hop delivers what the client retries)."""
    transport = smtp.transport
    if isinstance(transport, asyncio.WriteTransport):
        sock = transport.get_extra_info("socket")
        if sock is not None:  # the close is a reset: the kernel drops its unsent bytes too
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        transport.abort()
    smtp.close()


_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
"""(asyncio's abort() drops only its own buffer; a message of a few MB is all in the
kernel's send buffer, final dot included, and would reach the next hop after the cut.)"""


def _encoding(utf8: bool) -> str:
    return "utf-8" if utf8 else "ascii"


def _one_line(message: str) -> str:
    text = " ".join(message.split())
    return text or "(no text)"

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
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


class NextHopPool:
    """Idle sessions with the next hop, kept for the next transaction (one pool per worker).

    At most ``size`` are kept, each for at most ``idle_seconds`` (under the next hop's own
    idle timeout: Postfix's smtpd waits 300 s); the most recently used is taken first.
    """

    def __init__(self, size: int, idle_seconds: float) -> None:
        self.size = size
        self.idle_seconds = idle_seconds
        self._idle: list[tuple[aiosmtplib.SMTP, float, bool]] = []  # session, since, dirty
        self._closing: set[asyncio.Task[None]] = set()

    def take(self) -> tuple[aiosmtplib.SMTP, bool] | None:
        """A kept session and whether it needs RSET first, or None."""
        now = time.monotonic()
        while self._idle:
            smtp, since, dirty = self._idle.pop()
            if smtp.is_connected and now - since <= self.idle_seconds:
                return smtp, dirty
            self._quit(smtp)
        return None

    def give_back(self, smtp: aiosmtplib.SMTP, *, dirty: bool) -> bool:
        """Keep ``smtp`` for a later transaction; False when the pool is full (or off)."""
        if len(self._idle) >= self.size or not smtp.is_connected:
            return False
        self._idle.append((smtp, time.monotonic(), dirty))
        return True

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
        idle, self._idle = self._idle, []
        for smtp, _, _ in idle:
            self._quit(smtp)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


class NextHop:
    """One transaction with the next hop: open (MAIL), recipients, then send or abandon."""

    def __init__(self, config: NextHopConfig, pool: NextHopPool | None = None) -> None:
        self.config = config
        self.pool = pool
        self._smtp: aiosmtplib.SMTP | None = None
        self._dirty = False  # a transaction was begun and not finished by a 250 to DATA
        self._broken = False  # the session cannot be trusted with another transaction

    @property
    def extensions(self) -> set[str]:
        """The ESMTP keywords the next hop offered (lower-case)."""
        return set(self._smtp.esmtp_extensions) if self._smtp else set()

    async def open(
        self, sender: str, params: Params, xforward: dict[str, str], *, utf8: bool
    ) -> None:
        """Pass the client on (XFORWARD) and send MAIL FROM, on a kept session or on a
        new one (connect, EHLO)."""
        kept = self.pool.take() if self.pool is not None else None
        if kept is not None:
            smtp, dirty = kept
            self._smtp = smtp
            try:
                await self._begin(smtp, sender, params, xforward, utf8, kept=True, reset=dirty)
                return
            except _Stale:
                log.info("next hop: a kept session had ended, starting a new one")
                smtp.close()
        config = self.config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            local_hostname=config.local_hostname,
            timeout=config.timeout_seconds,
            start_tls={"no": False, "opportunistic": None, "required": True}[config.starttls],
            validate_certs=config.starttls == "required",
        )
        self._smtp = smtp
        self._broken = False
        async with self._mirrored():
            await smtp.connect()
            await smtp.ehlo()
        await self._begin(smtp, sender, params, xforward, utf8, kept=False, reset=False)

    async def _begin(
        self,
        smtp: aiosmtplib.SMTP,
        sender: str,
        params: Params,
        xforward: dict[str, str],
        utf8: bool,
        *,
        kept: bool,
        reset: bool,
    ) -> None:
        """(RSET,) XFORWARD and MAIL FROM. On a ``kept`` session, the session failing
        (closed, 421, RSET refused) raises _Stale: nothing was accepted on it yet."""
        if reset:
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
                    answer = await smtp.execute_command(b"XFORWARD", line.encode("ascii"))
                    if answer.code == 421:
                        raise aiosmtplib.SMTPResponseException(answer.code, answer.message)
                    if answer.code != 250:
                        log.warning("next hop refused XFORWARD: %s", answer)
            options = params.for_next_hop(smtp.esmtp_extensions)
            self._dirty = True
            await smtp.mail(sender, options=options, encoding=_encoding(utf8))

    async def recipient(self, rcpt: str, params: Params, *, utf8: bool) -> str:
        """RCPT TO; the next hop's answer (a 2xx) or NextHopRefused."""
        smtp = self._live()
        async with self._mirrored():
            options = params.for_next_hop(smtp.esmtp_extensions)
            answer = await smtp.rcpt(rcpt, options=options, encoding=_encoding(utf8))
        return f"{answer.code} {_one_line(answer.message)}"

    async def send(self, message: bytes) -> str:
        """DATA; the next hop's 250 answer, or NextHopRefused with its 4xx/5xx."""
        smtp = self._live()
        async with self._mirrored():
            answer = await smtp.data(message)
        self._dirty = False  # the transaction is over: the session is clean again
        return f"{answer.code} {_one_line(answer.message)}"

    async def close(self) -> None:
        """End the transaction: keep the session for the next one (an unfinished
        transaction is abandoned with RSET before it), or QUIT; a broken session is
        closed at once."""
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        if self._broken:  # it may still owe an answer (or be out of step): no QUIT either
            smtp.close()
            return
        if self.pool is not None and self.pool.give_back(smtp, dirty=self._dirty):
            return
        await _quit(smtp, min(self.config.timeout_seconds, 10.0))

    def drop(self) -> None:
        """Close at once (our client is gone): the next hop discards the transaction."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _live(self) -> aiosmtplib.SMTP:
        if self._smtp is None or not self._smtp.is_connected:
            raise NextHopRefused(UNREACHABLE)
        return self._smtp

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


def _encoding(utf8: bool) -> str:
    return "utf-8" if utf8 else "ascii"


def _one_line(message: str) -> str:
    text = " ".join(message.split())
    return text or "(no text)"

"""The next hop: one aiosmtplib session per transaction, the envelope passed on unchanged.

MAIL and each RCPT go to the next hop as the client sends them, so its answer to each is
mirrored to the client (before-queue, the real sender sees the real answer per recipient).
DATA goes only after the engine decided; a message not delivered is abandoned with RSET.
"""

from __future__ import annotations

import contextlib
import logging
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


class NextHop:
    """One transaction with the next hop: open (MAIL), recipients, then send or abandon."""

    def __init__(self, config: NextHopConfig) -> None:
        self.config = config
        self._smtp: aiosmtplib.SMTP | None = None

    @property
    def extensions(self) -> set[str]:
        """The ESMTP keywords the next hop offered (lower-case)."""
        return set(self._smtp.esmtp_extensions) if self._smtp else set()

    async def open(
        self, sender: str, params: Params, xforward: dict[str, str], *, utf8: bool
    ) -> None:
        """Connect, pass the client on (XFORWARD), and send MAIL FROM."""
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
        async with _mirrored():
            await smtp.connect()
            await smtp.ehlo()
            offered = smtp.esmtp_extensions.get("xforward")
            if config.xforward and offered is not None and xforward:
                for line in xforward_lines(xforward, offered.split()):
                    answer = await smtp.execute_command(b"XFORWARD", line.encode("ascii"))
                    if answer.code != 250:
                        log.warning("next hop refused XFORWARD: %s", answer)
            options = params.for_next_hop(smtp.esmtp_extensions)
            await smtp.mail(sender, options=options, encoding=_encoding(utf8))

    async def recipient(self, rcpt: str, params: Params, *, utf8: bool) -> str:
        """RCPT TO; the next hop's answer (a 2xx) or NextHopRefused."""
        smtp = self._live()
        async with _mirrored():
            options = params.for_next_hop(smtp.esmtp_extensions)
            answer = await smtp.rcpt(rcpt, options=options, encoding=_encoding(utf8))
        return f"{answer.code} {_one_line(answer.message)}"

    async def send(self, message: bytes) -> str:
        """DATA; the next hop's 250 answer, or NextHopRefused with its 4xx/5xx."""
        smtp = self._live()
        async with _mirrored():
            answer = await smtp.data(message)
        return f"{answer.code} {_one_line(answer.message)}"

    async def close(self) -> None:
        """End the session; a transaction without DATA is abandoned (nothing delivered)."""
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit(timeout=min(self.config.timeout_seconds, 10.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()

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
async def _mirrored() -> AsyncIterator[None]:
    """Turn aiosmtplib's errors into the reply to mirror (never a 2xx, never a 421)."""
    try:
        yield
    except aiosmtplib.SMTPResponseException as exc:
        if 400 <= exc.code < 600 and exc.code != 421:
            raise NextHopRefused(f"{exc.code} {_one_line(exc.message)}") from None
        raise NextHopRefused(UNREACHABLE) from None
    except (aiosmtplib.SMTPTimeoutError, TimeoutError):
        raise NextHopRefused(TIMED_OUT) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("next hop: %s", exc)
        raise NextHopRefused(UNREACHABLE) from None


def _encoding(utf8: bool) -> str:
    return "utf-8" if utf8 else "ascii"


def _one_line(message: str) -> str:
    text = " ".join(message.split())
    return text or "(no text)"

"""aiosmtpd's SMTP protocol, with the defaults a filter cannot live with changed.

- MAIL and RCPT keep every parameter a filter must pass on (DSN's RET, ENVID, NOTIFY,
  ORCPT; BODY; SMTPUTF8), case-preserved; aiosmtpd itself answers 555 to them and
  upper-cases values (../shared/docs/milter-postfix.md §3.3).
- XFORWARD (Postfix's way to name the real client) is accepted outside a transaction.
- The line-length limit is a setting (aiosmtpd's 1001 answers 500 to real mail).
- SMTPUTF8 is on, data stays bytes (so 8BITMIME is offered), command lines may carry
  the DSN parameters' extra length (RFC 3461 §5).
- DATA goes in blocks into a spool writer (milter.mime.spool), not line by line into
  aiosmtpd's list of lines joined at the end: a large message is in a spool file, never
  whole in memory. The handler finds it in ``message``; it is closed once DATA is answered.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, syntax

from milter.frontends.smtp.data import read_dot_data
from milter.frontends.smtp.params import (
    MAIL_KEYWORDS,
    RCPT_KEYWORDS,
    ParamError,
    Params,
    parse_address,
    parse_params,
    parse_xforward,
)
from milter.mime.spool import MessageWriter, RawMessage, SpoolConfig

COMMAND_LIMIT = 512  # RFC 5321 §4.5.3.1.4
DSN_COMMAND_LIMIT = COMMAND_LIMIT + 500 + 100  # ORCPT / ENVID add up to 500 (RFC 3461 §5)


class FilterSMTP(SMTP):
    """One client connection. The handler (one per connection) does the filtering."""

    def __init__(
        self,
        handler: Any,
        *,
        max_line_bytes: int,
        on_lost: Callable[[FilterSMTP], None],
        spool: SpoolConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self.line_length_limit = max_line_bytes + 2  # read before super().__init__ uses it
        self._on_lost = on_lost
        self._spool = spool or SpoolConfig()
        self.message: RawMessage | None = None
        self._corked: list[bytes] | None = None  # reply lines held for one write (EHLO)
        super().__init__(handler, enable_SMTPUTF8=True, decode_data=False, **kwargs)
        self.command_size_limits = collections.defaultdict(
            lambda: COMMAND_LIMIT, {"MAIL": DSN_COMMAND_LIMIT, "RCPT": DSN_COMMAND_LIMIT}
        )
        self.xforward: dict[str, str] = {}

    def connection_lost(self, error: Exception | None) -> None:
        """Tell the server this connection is gone, then let aiosmtpd clean up."""
        try:
            super().connection_lost(error)
        finally:
            self._on_lost(self)

    def abort(self, reply: str) -> None:
        """Say ``reply`` (a 421) and close, from outside a command (timers, shutdown)."""
        transport = self.transport
        if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            return
        transport.write(reply.encode("utf-8") + b"\r\n")
        transport.close()

    def close_after_reply(self) -> None:
        """Close once what was written is sent (after a 421 given as a command's reply)."""
        if self.transport is not None:
            self.transport.close()

    @property
    def in_transaction(self) -> bool:
        """True between MAIL FROM and the end of that message."""
        return bool(self.envelope is not None and self.envelope.mail_from)

    async def push(self, status: AnyStr) -> None:
        """Send one reply line, or keep it for `smtp_EHLO`'s single write."""
        if self._corked is None:
            await super().push(status)
            return
        line = status.encode("utf-8") if isinstance(status, str) else status
        self._corked.append(line + b"\r\n")

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """aiosmtpd's EHLO, its lines sent in one write (aiosmtpd writes one per line:
        several small segments per reply, which cost a write each and, without
        TCP_NODELAY, a delayed-ACK wait)."""
        self._corked = []
        try:
            await super().smtp_EHLO(hostname)
        finally:
            lines, self._corked = self._corked, None
        if lines:
            await super().push(b"".join(lines)[:-2])

    async def _params(self, text: str | None, allowed: frozenset[str]) -> Params | None:
        try:
            return parse_params(text or "", allowed)
        except ParamError as exc:
            await self.push(exc.reply)
            return None

    async def _address(self, arg: str | None, keyword: str) -> tuple[str, str] | None:
        syntax_error = f"501 5.5.4 Syntax: {keyword} <address> [parameters]"
        rest = self._strip_command_keyword(keyword, arg or "")
        if rest is None:
            await self.push(syntax_error)
            return None
        address, tail = parse_address(rest)
        if address is None:
            await self.push("553 5.1.3 Malformed address")
            return None
        if not address:
            await self.push(syntax_error)
            return None
        if tail and not (self.session and self.session.extended_smtp):
            await self.push(syntax_error)
            return None
        return address, tail or ""

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        """MAIL FROM, with every parameter a filter passes on."""
        if await self.check_helo_needed():
            return
        if self.in_transaction:
            await self.push("503 5.5.1 Nested MAIL command")
            return
        parsed = await self._address(arg, "FROM:")
        if parsed is None:
            return
        params = await self._params(parsed[1], MAIL_KEYWORDS)
        if params is None:
            return
        size = params.get("SIZE")
        if size and self.data_size_limit and int(size) > self.data_size_limit:
            await self.push("552 5.3.4 Message size exceeds fixed maximum message size")
            return
        await self.push(await self._call_handler_hook("MAIL", parsed[0], params))

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        """RCPT TO, with NOTIFY and ORCPT kept as sent."""
        if await self.check_helo_needed():
            return
        if not self.in_transaction:
            await self.push("503 5.5.1 Need MAIL command")
            return
        parsed = await self._address(arg, "TO:")
        if parsed is None:
            return
        params = await self._params(parsed[1], RCPT_KEYWORDS)
        if params is None:
            return
        await self.push(await self._call_handler_hook("RCPT", parsed[0], params))

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        """DATA into a spool writer; the handler's ``handle_DATA`` answers after the dot.

        As aiosmtpd's own: a line past the line limit (500) or a message past
        ``data_size_limit`` (552) is read to its end, then refused; a spool that cannot be
        written is a 451."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        writer = self._spool.writer()
        try:
            problem = await self._read_data(writer)
            if problem is not None:
                writer.discard()
                self._set_post_data_state()  # type: ignore[no-untyped-call]
                await self.push(problem)
                return
            self.message = writer.finish()
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(status)
        finally:
            writer.discard()
            if self.message is not None:
                self.message.close()
                self.message = None

    async def _read_data(self, writer: MessageWriter) -> str | None:
        """Read up to the lone dot, unstuffing dots (in blocks: milter/frontends/smtp/data.py);
        the refusal to give, if any."""
        try:
            return await read_dot_data(
                self._reader,
                writer,
                line_limit=self.line_length_limit,
                size_limit=self.data_size_limit,
            )
        except asyncio.CancelledError:  # connection reset during DATA
            self._writer.close()
            raise

    @syntax("XFORWARD attribute=value ...")
    async def smtp_XFORWARD(self, arg: str | None) -> None:
        """Postfix's XFORWARD: who the real client is (values kept as xtext)."""
        if self.in_transaction:
            await self.push("503 5.5.1 XFORWARD not allowed in a transaction")
            return
        try:
            self.xforward.update(parse_xforward(arg or ""))
        except ParamError as exc:
            await self.push(exc.reply)
            return
        await self.push("250 2.0.0 Ok")

"""One kept UDP socket per loopback name server, shared by all queries in flight.

dnspython's resolver opens a new UDP socket (and an asyncio transport) for every query:
about half of the ~1 ms of CPU an uncached lookup cost (docs/performance.md, "DNS").
dnspython has no socket sharing for concurrent queries (``dns.asyncquery.udp`` accepts a
socket but reads the next datagram from it, whoever it was for), so this module does the
one thing it lacks, by hand: answers are matched to queries by message id, then by
dnspython's own ``Message.is_response`` (same question), and everything else stays
dnspython's — building and parsing messages, the resolver's nameserver rotation, SERVFAIL
handling, NXDOMAIN, and the TCP retry of truncated answers (``dns.message.Truncated`` is
raised to the resolver exactly as ``dns.asyncquery.udp(raise_on_truncation=True)`` does).
What ``udp(ignore_errors=True, ignore_unexpected=True)`` ignores is ignored here too:
datagrams that do not parse, answers to other questions, datagrams from other addresses
(the socket is connected, so the kernel drops those).

Only loopback servers get a kept socket (``KeptSocketNameserver.for_address``): a fixed
source port leaves only the 16-bit message id to guess for a spoofed answer, which is no
concern on 127.0.0.0/8 or ::1 (the recommended set-up is a local caching resolver) but
would be towards a remote server, which keeps dnspython's socket per query.

``ask`` is the fast path ``DnsResolver`` takes for plain lookups: the query is written
and the answer read by ``milter.dns.wire`` (no dnspython objects); a response that is not
plain is parsed and judged by dnspython as above and handed back for dnspython's resolver
logic to continue from.

The socket is registered with the event loop only while a query waits on it, so an idle
resolver holds no loop resources and may be used from another loop later.
tests/dns/test_dns_udp.py runs it against the real test DNS server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import socket
import weakref
from typing import Any

import dns.exception
import dns.message
import dns.nameserver
import dns.rdatatype

from milter.dns.wire import Edns, WireAnswer, encode_query, read_answer

__all__ = ["KeptSocketNameserver", "Outcome", "UdpChannel"]

_MAX_DATAGRAM = 65535


Outcome = dns.message.Message | WireAnswer


class _Waiter:
    """A query waiting for its answer on a channel."""

    __slots__ = ("future", "ignore_trailing", "one_rr_per_rrset", "plain", "request")

    def __init__(
        self,
        future: asyncio.Future[Outcome],
        request: dns.message.Message | None,
        plain: tuple[int, bytes, str] | None = None,
        *,
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> None:
        self.future = future
        self.request = request  # built only when needed for a ``plain`` query
        self.plain = plain  # (id, question bytes, name) of a query sent by ``ask``
        self.one_rr_per_rrset = one_rr_per_rrset
        self.ignore_trailing = ignore_trailing

    def offer(self, wire: bytes) -> None:
        """Settle the future if ``wire`` answers this query; otherwise leave it waiting.
        A plain query takes a plain answer (``milter.dns.wire``) as it is; any other
        datagram is judged by dnspython's receive_udp rules with ignore_errors=True."""
        if self.plain is not None:
            answer = read_answer(wire, self.plain[0], self.plain[1])
            if answer is not None:
                self.future.set_result(answer)
                return
        request = self.request if self.request is not None else self._request()
        try:
            response = dns.message.from_wire(
                wire,
                keyring=request.keyring,
                request_mac=request.mac,
                one_rr_per_rrset=self.one_rr_per_rrset,
                ignore_trailing=self.ignore_trailing,
                raise_on_truncation=True,
            )
        except dns.message.Truncated as exc:
            if request.is_response(exc.message()):  # type: ignore[no-untyped-call]
                self.future.set_exception(exc)  # the resolver retries over TCP
            return
        except Exception:  # noqa: BLE001 - a datagram that does not parse is ignored
            return
        if request.is_response(response):
            self.future.set_result(response)

    def _request(self) -> dns.message.Message:
        """The dnspython message equal to what ``ask`` sent (``wire.encode_query``)."""
        assert self.plain is not None
        qid, question, name = self.plain
        qtype = int.from_bytes(question[-4:-2], "big")
        self.request = dns.message.make_query(name, dns.rdatatype.RdataType(qtype))
        self.request.id = qid
        return self.request


class UdpChannel:
    """A connected, non-blocking UDP socket to one server, and the queries waiting on it."""

    def __init__(self, address: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((address, port))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._fd = sock.fileno()
        self._waiting: dict[int, list[_Waiter]] = {}
        self.in_flight = 0  # queries waiting on the socket
        self._loop: asyncio.AbstractEventLoop | None = None  # set while registered
        self._closer = weakref.finalize(self, sock.close)

    @property
    def closed(self) -> bool:
        """True once ``close`` ran (or the socket was garbage-collected)."""
        return not self._closer.alive

    def close(self) -> None:
        """Close the socket; queries still waiting fail with ``ConnectionError``."""
        self._fail(ConnectionError("DNS channel closed"))
        self._closer()

    def abandon(self) -> None:
        """Close the socket without touching the waiting queries (a forked child's copy,
        whose waiters belong to the parent's event loop)."""
        self._waiting = {}
        self.in_flight = 0
        self._loop = None
        self._closer()

    async def query(
        self,
        request: dns.message.Message,
        wait: float | None,
        *,
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> dns.message.Message:
        """Send ``request`` and wait for its answer; ``dns.exception.Timeout`` after
        ``wait`` seconds, ``OSError`` on a socket error (e.g. ICMP port unreachable)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        waiter = _Waiter(
            future, request, one_rr_per_rrset=one_rr_per_rrset, ignore_trailing=ignore_trailing
        )
        response = await self._exchange(loop, request.id, request.to_wire(), waiter, wait)
        assert isinstance(response, dns.message.Message)
        return response

    async def ask(
        self, name: str, question: bytes, wait: float | None, edns: Edns | None = None
    ) -> Outcome:
        """Send the plain query for ``question`` (``milter.dns.wire``) and wait: a
        ``WireAnswer`` for a plain response, else dnspython's parsed response; raises
        what ``query`` raises, and ``dns.message.Truncated`` for a truncated answer."""
        loop = asyncio.get_running_loop()
        qid = secrets.randbelow(65536)
        future: asyncio.Future[Outcome] = loop.create_future()
        waiter = _Waiter(future, None, (qid, question, name))
        return await self._exchange(loop, qid, encode_query(qid, question, edns), waiter, wait)

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        qid: int,
        wire: bytes,
        waiter: _Waiter,
        wait: float | None,
    ) -> Outcome:
        if not self.usable_from(loop):
            raise RuntimeError("DNS channel closed or in use by another event loop")
        future = waiter.future
        self._add(loop, qid, waiter)
        timer = None
        try:
            try:
                self._sock.send(wire)
            except BlockingIOError:
                await loop.sock_sendall(self._sock, wire)
            if wait is not None:
                timer = loop.call_later(max(wait, 0.0), _expire, future, wait)
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            self._remove(qid, waiter)

    def usable_from(self, loop: asyncio.AbstractEventLoop) -> bool:
        """False while queries of another event loop wait on the socket (one loop at a time)."""
        return not self.closed and (self._loop is None or self._loop is loop)

    def _add(self, loop: asyncio.AbstractEventLoop, qid: int, waiter: _Waiter) -> None:
        if self._loop is None:
            loop.add_reader(self._fd, self._readable)
            self._loop = loop
        self._waiting.setdefault(qid, []).append(waiter)
        self.in_flight += 1

    def _remove(self, qid: int, waiter: _Waiter) -> None:
        waiters = self._waiting.get(qid)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            self.in_flight -= 1
            if not waiters:
                del self._waiting[qid]
        if not self._waiting and self._loop is not None:
            if not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            self._loop = None

    def _readable(self) -> None:
        while True:
            try:
                wire = self._sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ConnectionRefusedError from an ICMP error
                self._fail(exc)
                return
            if len(wire) < 2:
                continue
            for waiter in tuple(self._waiting.get(int.from_bytes(wire[:2], "big"), ())):
                if not waiter.future.done():
                    waiter.offer(wire)
                    if waiter.future.done():
                        break

    def _fail(self, exc: BaseException) -> None:
        for waiters in self._waiting.values():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)


def _expire(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(dns.exception.Timeout(timeout=timeout))  # type: ignore[no-untyped-call]


class KeptSocketNameserver(dns.nameserver.Do53Nameserver):
    """dnspython's Do53 name server whose UDP queries share kept sockets (TCP as dnspython
    does it): at most ``MAX_IN_FLIGHT`` queries wait on one socket, so its receive buffer
    (~200 KB by default) holds every answer even while the event loop is busy scanning;
    more concurrent queries open more sockets, up to ``MAX_CHANNELS``, then dnspython's
    socket per query."""

    MAX_IN_FLIGHT = 32
    MAX_CHANNELS = 16

    def __init__(self, address: str, port: int = 53) -> None:
        super().__init__(address, port)
        self._channels: list[UdpChannel] = []
        self._pid = os.getpid()

    @staticmethod
    def for_address(address: str, port: int = 53) -> dns.nameserver.Do53Nameserver:
        """A kept-socket name server for a loopback address, else dnspython's own."""
        if ipaddress.ip_address(address).is_loopback:
            return KeptSocketNameserver(address, port)
        return dns.nameserver.Do53Nameserver(address, port)

    @property
    def channels(self) -> tuple[UdpChannel, ...]:
        """The open kept sockets of this process."""
        return tuple(c for c in self._channels if not c.closed and self._pid == os.getpid())

    def _pick(self) -> UdpChannel | None:
        """A channel of this process with room for a query from the running loop (a new
        one if needed and allowed), or None. After a fork the parent's sockets are left
        to the parent: shared, they would hand one process's answers to the other."""
        if self._pid != os.getpid():
            for channel in self._channels:
                channel.abandon()  # this process's copies of the parent's sockets only
            self._channels = []
            self._pid = os.getpid()
        self._channels = [c for c in self._channels if not c.closed]
        loop = asyncio.get_running_loop()
        for channel in self._channels:
            if channel.in_flight < self.MAX_IN_FLIGHT and channel.usable_from(loop):
                return channel
        if len(self._channels) >= self.MAX_CHANNELS:
            return None
        channel = UdpChannel(self.address, self.port)
        self._channels.append(channel)
        return channel

    def can_ask(self) -> bool:
        """Whether ``ask`` has a kept socket to use now."""
        return self._pick() is not None

    async def ask(
        self, name: str, question: bytes, wait: float, edns: Edns | None = None
    ) -> Outcome:
        """``UdpChannel.ask`` on a kept socket (``can_ask`` first)."""
        channel = self._pick()
        if channel is None:
            raise RuntimeError("no kept DNS socket free")  # can_ask said otherwise
        return await channel.ask(name, question, wait, edns)

    def close(self) -> None:
        """Close the kept sockets (a later query opens new ones)."""
        for channel in self._channels:
            channel.close()
        self._channels = []

    async def async_query(  # noqa: PLR0917 - dnspython's signature
        self,
        request: dns.message.QueryMessage,
        timeout: float,  # noqa: ASYNC109 - dnspython's signature
        source: str | None,
        source_port: int,
        max_size: bool,
        backend: Any,  # dns.asyncbackend.Backend
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> dns.message.Message:
        """UDP on a kept socket; TCP (``max_size``), a bound source, or no kept socket
        free as dnspython does it."""
        channel = None if max_size or source or source_port else self._pick()
        if channel is None:
            return await super().async_query(
                request,
                timeout,
                source,
                source_port,
                max_size,
                backend,
                one_rr_per_rrset,
                ignore_trailing,
            )
        return await channel.query(
            request, timeout, one_rr_per_rrset=one_rr_per_rrset, ignore_trailing=ignore_trailing
        )

"""The kept UDP socket: concurrent queries share it and each gets its own answer; stray
datagrams are ignored; remote servers keep dnspython's socket per query."""

from __future__ import annotations

import asyncio
import os
import socket

import dns.edns
import dns.message
import dns.nameserver
import dns.rrset
import pytest

from milter.dns.resolver import DnsTimeout
from milter.dns.stub import DnsResolver, _sends_plain_queries
from milter.dns.udp import KeptSocketNameserver
from tests.support.dnsserver import DnsTestServer
from tests.support.fixtures import dns_server

__all__ = ["dns_server"]  # imported fixture


def _kept(resolver: DnsResolver) -> KeptSocketNameserver:
    first = resolver._resolver.nameservers[0]
    assert isinstance(first, KeptSocketNameserver)
    return first


async def test_concurrent_queries_share_kept_sockets(dns_server: DnsTestServer) -> None:
    """32 queries at most wait on one socket (its receive buffer holds all their answers
    while the loop is busy); 40 at once use two."""
    for i in range(40):
        dns_server.add(f"n{i}.example.com", "TXT", f"v=spf1 ip4:192.0.2.{i} -all")
    dns_server.fault("slow.example.com", "timeout")
    resolver = DnsResolver([dns_server.address], timeout=0.5)
    await resolver.query("n0.example.com", "TXT")
    (first,) = _kept(resolver).channels
    slow = asyncio.ensure_future(resolver.query("slow.example.com", "TXT"))
    answers = await asyncio.gather(
        *(resolver.query(f"n{i}.example.com", "TXT") for i in range(1, 40))
    )
    assert [a.records for a in answers] == [(f"v=spf1 ip4:192.0.2.{i} -all",) for i in range(1, 40)]
    with pytest.raises(DnsTimeout):  # a query nobody answers times out beside the others
        await slow
    channels = _kept(resolver).channels
    assert channels[0] is first
    assert len(channels) == 2  # 40 waiting at once: 32 on the first socket, 8 on a second
    resolver.cache.clear()
    await resolver.query("n1.example.com", "TXT")
    assert _kept(resolver).channels == channels  # idle sockets are reused, not reopened
    resolver.close()
    assert all(channel.closed for channel in channels)


def test_resolver_serves_one_loop_after_another(dns_server: DnsTestServer) -> None:
    dns_server.add("a.example.com", "A", "192.0.2.1")
    resolver = DnsResolver([dns_server.address], timeout=1.0)
    for _ in range(2):  # asyncio.run: a new event loop each time, same socket
        resolver.cache.clear()
        answer = asyncio.run(resolver.query("a.example.com", "A"))
        assert answer.records == ("192.0.2.1",)
    resolver.close()


async def test_stray_datagrams_are_ignored() -> None:
    """A server that first sends a datagram too short to parse, an answer with another ID,
    an answer to another question with the right ID and a malformed one: only the real
    answer is taken (as dnspython's own UDP query does)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    loop = asyncio.get_running_loop()
    resolver = DnsResolver([f"127.0.0.1:{server.getsockname()[1]}"], timeout=2.0)
    try:
        pending = asyncio.ensure_future(resolver.query("spf.example.com", "TXT"))
        wire, client = await loop.sock_recvfrom(server, 512)
        query = dns.message.from_wire(wire)
        good = dns.message.make_response(query)
        good.answer.append(
            dns.rrset.from_text("spf.example.com.", 60, "IN", "TXT", '"v=spf1 -all"')
        )
        other = dns.message.make_query("other.example.com", "TXT")
        other.id = query.id
        wrong_question = dns.message.make_response(other)
        wrong_id = dns.message.make_response(query)
        wrong_id.id = query.id ^ 0x5555
        for datagram in (
            b"\x00",
            wrong_id.to_wire(),
            wrong_question.to_wire(),
            good.to_wire()[:-3],  # cut short
            good.to_wire(),
        ):
            await loop.sock_sendto(server, datagram, client)
        answer = await pending
        assert answer.records == ("v=spf1 -all",)
    finally:
        server.close()
        resolver.close()


def test_forked_child_opens_its_own_socket(dns_server: DnsTestServer) -> None:
    """Workers fork from the process that built the resolver: a socket shared by the two
    would hand one process's answers to the other."""
    dns_server.add("a.example.com", "A", "192.0.2.1")
    resolver = DnsResolver([dns_server.address], timeout=1.0)
    assert asyncio.run(resolver.query("a.example.com", "A")).records == ("192.0.2.1",)
    parents = _kept(resolver).channels
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        resolver.cache.clear()
        ok = asyncio.run(resolver.query("a.example.com", "A")).records == ("192.0.2.1",)
        mine = _kept(resolver).channels
        os._exit(0 if ok and mine and not set(mine) & set(parents) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _kept(resolver).channels == parents  # the parent's are untouched
    resolver.cache.clear()
    assert asyncio.run(resolver.query("a.example.com", "A")).records == ("192.0.2.1",)
    resolver.close()


def test_remote_servers_keep_dnspythons_socket_per_query() -> None:
    assert isinstance(KeptSocketNameserver.for_address("127.0.0.1", 53), KeptSocketNameserver)
    assert isinstance(KeptSocketNameserver.for_address("::1", 53), KeptSocketNameserver)
    remote = KeptSocketNameserver.for_address("192.0.2.53", 53)
    assert type(remote) is dns.nameserver.Do53Nameserver
    assert DnsResolver(["192.0.2.53"]).nameservers == ["192.0.2.53:53"]


async def test_edns_options_or_rotate_leave_queries_to_dnspython(
    dns_server: DnsTestServer,
) -> None:
    """The hand-written query is dnspython's with or without EDNS (resolv.conf ``options
    edns0``); with EDNS options, other flags or ``rotate`` set, dnspython writes every
    query (still on the kept socket)."""
    dns_server.add("e.example.com", "TXT", "v=spf1 -all")
    resolver = DnsResolver([dns_server.address], timeout=1.0)
    asked: list[str] = []
    first = _kept(resolver)
    plain_ask = first.ask

    async def spy(name: str, question: bytes, wait: float, edns: object = None) -> object:
        asked.append(f"{name} edns={edns}")
        return await plain_ask(name, question, wait, edns)  # type: ignore[arg-type]

    first.ask = spy  # type: ignore[method-assign]

    async def lookup() -> tuple[str, ...]:
        resolver.cache.clear()
        return (await resolver.query("e.example.com", "TXT")).records

    assert await lookup() == ("v=spf1 -all",)
    resolver._resolver.use_edns(0, 0, 1232)
    assert await lookup() == ("v=spf1 -all",)
    assert asked == ["e.example.com edns=None", "e.example.com edns=(0, 0, 1232)"]
    resolver._resolver.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(10, b"12345678")])
    assert not _sends_plain_queries(resolver._resolver)
    assert await lookup() == ("v=spf1 -all",)
    resolver._resolver.use_edns(-1)
    resolver._resolver.rotate = True
    assert not _sends_plain_queries(resolver._resolver)
    assert await lookup() == ("v=spf1 -all",)
    assert len(asked) == 2  # dnspython asked the last two
    resolver.close()

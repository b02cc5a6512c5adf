"""A real authoritative DNS server for tests, on 127.0.0.1 UDP and TCP (same ephemeral port).

Usage::

    with DnsTestServer({"example.com": [("A", "192.0.2.1"), ("TXT", "v=spf1 -all")]}) as srv:
        resolver = DnsResolver([srv.address], timeout=0.5)

Record values: A/AAAA an address; MX ``(pref, exchange)`` or "pref exchange"; TXT/SPF a
string (split into 255-byte character-strings) or a list of strings (one
character-string each, longer ones split) — str is encoded Latin-1 when possible so that
"\\xEF" means the byte 0xEF, else UTF-8; PTR/CNAME/NS a name; SOA the usual 7 fields
(tuple or text); any other type its zone-file text. A record may carry a TTL as a third
tuple item. A name listed with no records exists (NODATA). Negative answers carry the
SOA of the nearest ancestor holding one, else a synthesized root SOA.

Faults per name (all types) or per (name, type): ``"servfail"`` (rcode SERVFAIL),
``"refused"`` (rcode REFUSED, as a server that is not authoritative for the name answers),
``"timeout"`` (never answered), ``"truncate"`` (over UDP an empty answer with TC set, so
clients retry over TCP, where the real answer is given).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Record = tuple[str, Any] | tuple[str, Any, int]
Zone = Mapping[str, Iterable[Record]]
FAULTS = ("servfail", "refused", "timeout", "truncate")


@dataclass(frozen=True)
class LoggedQuery:
    """One query the server received."""

    name: str
    rdtype: str
    transport: str  # "udp" or "tcp"


def _norm(name: str | dns.name.Name) -> str:
    """Lookup key: the escaped presentation form, lower-case, without the final dot."""
    if isinstance(name, str):
        name = _dns_name(name.strip())
    return "" if name == dns.name.root else name.to_text(omit_final_dot=True).lower()


def _to_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _char_strings(value: Any) -> list[bytes]:
    parts = [value] if isinstance(value, str | bytes) else list(value)
    out: list[bytes] = []
    for part in parts:
        raw = _to_bytes(part)
        out.extend(raw[i : i + 255] for i in range(0, len(raw), 255))
        if not raw:
            out.append(b"")
    return out or [b""]  # a TXT record with no strings is illegal: send one empty string


def _dns_name(text: str) -> dns.name.Name:
    return dns.name.from_text(text) if text.strip(".") else dns.name.root


def make_rdata(rdtype: str, value: Any) -> dns.rdata.Rdata:
    """Build one rdata from the friendly forms described in the module docstring."""
    rdclass, rtype = dns.rdataclass.IN, dns.rdatatype.from_text(rdtype)
    if rdtype in ("TXT", "SPF"):
        strings = _char_strings(value)
        txt = "".join('"' + "".join(f"\\{b:03d}" for b in s) + '"' for s in strings)
        return dns.rdata.from_text(rdclass, rtype, txt)
    if rdtype == "MX" and not isinstance(value, str):
        pref, exchange = value
        return dns.rdata.from_text(rdclass, rtype, f"{int(pref)} {_dns_name(str(exchange))}")
    if rdtype in ("PTR", "CNAME", "NS"):
        return dns.rdata.from_text(rdclass, rtype, str(_dns_name(str(value))))
    if rdtype == "SOA" and not isinstance(value, str):
        return dns.rdata.from_text(rdclass, rtype, " ".join(str(v) for v in value))
    return dns.rdata.from_text(rdclass, rtype, str(value))


class DnsTestServer:
    """Authoritative test server in background threads; a context manager."""

    def __init__(
        self,
        zone: Zone | None = None,
        *,
        ttl: int = 300,
        soa_ttl: int = 300,
        soa_minimum: int = 60,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.ttl = ttl
        self.soa_ttl = soa_ttl
        self.soa_minimum = soa_minimum
        self.queries: list[LoggedQuery] = []
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, list[tuple[dns.rdata.Rdata, int]]]] = {}
        self._faults: dict[tuple[str, str | None], str] = {}
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        if zone:
            self.load(zone)

    @property
    def address(self) -> str:
        """ "HOST:PORT", the form ``DnsResolver`` takes."""
        return f"{self.host}:{self.port}"

    # -- data ---------------------------------------------------------------------------
    def load(self, zone: Zone) -> None:
        """Replace all records and faults by ``zone`` ({name: [(rdtype, value[, ttl])]})."""
        with self._lock:
            self._data.clear()
            self._faults.clear()
        for name, records in zone.items():
            self.add_name(name)
            for record in records:
                self.add(name, *record)

    def add_name(self, name: str) -> None:
        """Make ``name`` exist (NODATA rather than NXDOMAIN for absent types)."""
        with self._lock:
            self._data.setdefault(_norm(name), {})

    def add(self, name: str, rdtype: str, value: Any, ttl: int | None = None) -> None:
        """Add one record."""
        rdtype = rdtype.upper()
        rd = make_rdata(rdtype, value)
        with self._lock:
            rrs = self._data.setdefault(_norm(name), {}).setdefault(rdtype, [])
            rrs.append((rd, self.ttl if ttl is None else ttl))

    def fault(self, name: str, kind: str, rdtype: str | None = None) -> None:
        """Make queries for ``name`` (of ``rdtype``, or any type) misbehave: see FAULTS."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults[(_norm(name), rdtype.upper() if rdtype else None)] = kind

    def clear(self) -> None:
        """Drop records, faults and the query log."""
        with self._lock:
            self._data.clear()
            self._faults.clear()
            self.queries.clear()

    # -- answering ----------------------------------------------------------------------
    def respond(self, wire: bytes, tcp: bool) -> bytes | None:
        """The reply to one query message, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.FORMERR)
            return resp.to_wire()
        question = query.question[0]
        name = _norm(question.name)
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append(LoggedQuery(name, rdtype, "tcp" if tcp else "udp"))
            fault = self._faults.get((name, rdtype)) or self._faults.get((name, None))
        if fault == "timeout":
            return None
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        if fault in ("servfail", "refused"):
            resp.set_rcode(dns.rcode.SERVFAIL if fault == "servfail" else dns.rcode.REFUSED)
            return resp.to_wire()
        if fault == "truncate" and not tcp:
            resp.flags |= dns.flags.TC
            return resp.to_wire()
        with self._lock:
            self._fill(resp, question.name, rdtype)
        limit = 65535 if tcp else (query.payload if query.edns >= 0 else 512)
        try:
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            short = dns.message.make_response(query)
            short.flags |= dns.flags.AA | dns.flags.TC
            return short.to_wire()

    def _fill(self, resp: dns.message.Message, qname: dns.name.Name, rdtype: str) -> None:
        seen: set[str] = set()
        owner = qname
        while True:
            name = _norm(owner)
            records = self._data.get(name, {})
            if rdtype in records:
                resp.answer.append(self._rrset(owner, rdtype, records[rdtype]))
                return
            if rdtype != "CNAME" and "CNAME" in records:
                if name in seen or len(seen) >= 8:  # CNAME loop (RFC 1034 §3.6.2)
                    resp.answer.clear()
                    resp.set_rcode(dns.rcode.SERVFAIL)
                    return
                seen.add(name)
                cname = self._rrset(owner, "CNAME", records["CNAME"])
                resp.answer.append(cname)
                owner = cname[0].target
                continue
            if not self._exists(name):
                resp.set_rcode(dns.rcode.NXDOMAIN)
            resp.authority.append(self._soa_for(name))
            return

    def _rrset(
        self, owner: dns.name.Name, rdtype: str, records: Sequence[tuple[dns.rdata.Rdata, int]]
    ) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        for rd, ttl in records:
            rrset.add(rd, ttl)
        rrset.update_ttl(min(ttl for _, ttl in records))
        return rrset

    def _exists(self, name: str) -> bool:
        return name in self._data or any(n.endswith("." + name) for n in self._data)

    def _soa_for(self, name: str) -> dns.rrset.RRset:
        labels = name.split(".") if name else []
        for i in range(len(labels) + 1):
            apex = ".".join(labels[i:])
            soa = self._data.get(apex, {}).get("SOA")
            if soa:
                return self._rrset(_dns_name(apex), "SOA", soa)
        rd = make_rdata(
            "SOA", ("ns.test.", "hostmaster.test.", 1, 3600, 600, 86400, self.soa_minimum)
        )
        return self._rrset(dns.name.root, "SOA", [(rd, self.soa_ttl)])

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> DnsTestServer:
        """Bind UDP and TCP on one ephemeral port of 127.0.0.1 and serve in threads."""
        for _ in range(20):
            udp = _UdpServer((self.host, 0), _UdpHandler, self)
            port = udp.server_address[1]
            try:
                tcp = _TcpServer((self.host, port), _TcpHandler, self)
            except OSError:
                udp.server_close()
                continue
            self.port = int(port)
            self._servers = [udp, tcp]
            break
        else:
            raise OSError("could not bind UDP and TCP on one port")
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> DnsTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], handler: type[Any], dns: DnsTestServer) -> None:
        self.dns = dns
        super().__init__(addr, handler)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type[Any], dns: DnsTestServer) -> None:
        self.dns = dns
        super().__init__(addr, handler)


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.dns.respond(data, tcp=False)  # type: ignore[attr-defined]
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        try:
            while True:
                header = _recv_exact(sock, 2)
                if header is None:
                    return
                body = _recv_exact(sock, int.from_bytes(header, "big"))
                if body is None:
                    return
                reply = self.server.dns.respond(body, tcp=True)  # type: ignore[attr-defined]
                if reply is not None:
                    sock.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            return


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf

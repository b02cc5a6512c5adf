"""The one DNS message shape of nearly every lookup, written and read without dnspython objects.

Why by hand: dnspython turns every name into an immutable ``Name``, every type and class
into an enum and every record into an ``Rdata`` object, then follows CNAMEs through
``find_rrset``; for one uncached lookup that is ~1 ms of CPU here (docs/performance.md,
"DNS"), ten times the cost of the socket round trip. The answers the checks need are a
few text strings (``milter.dns.resolver``'s record forms) and a TTL.

Only the plain case is handled: a query for one LDH(+underscore) name of a type listed in
``QTYPES``, as dnspython's resolver sends it (no EDNS, or EDNS without options), and a
response with ID, question, QR set, opcode QUERY, no TC, rcode NOERROR or NXDOMAIN
(extended rcode 0), at most one OPT record (owner root, no options, in the additional
section), other records of class IN and of the types below only, names of
LDH(+underscore) labels, every length consistent and nothing after the last record.
Anything else — truncation, SERVFAIL/REFUSED, other types or classes, escapes in names,
long CNAME chains, malformed data — gives ``None``, and the caller hands the datagram to
dnspython, which then decides as it always did.

What is read mirrors dnspython 2.x: RRs merge into RRsets by (owner, type) with the
smallest TTL (a TTL above 2**31-1 counts as 0), equal records once, a CNAME RRset keeps
its last record (CNAME is a singleton type); ``Message.resolve_chaining`` follows at most
``MAX_CHAIN`` - 1 CNAMEs and takes the negative TTL from the SOA of the nearest enclosing
name in the authority section (min of its TTL and MINIMUM), ``NEGATIVE_TTL_WITHOUT_SOA``
without one. tests/dns/test_dns_wire.py compares every answer with dnspython's on
generated messages.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass

import dns.ipv6
import dns.message

__all__ = ["QTYPES", "WireAnswer", "encode_query", "question_bytes", "read_answer"]

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA = 1, 2, 5, 6, 12, 15, 16, 28
_OPT = 41
QTYPES = {"A": A, "NS": NS, "CNAME": CNAME, "PTR": PTR, "MX": MX, "TXT": TXT, "AAAA": AAAA}
_IN = 1
_LABEL = re.compile(rb"[A-Za-z0-9_-]{1,63}\Z")  # labels dnspython prints without escapes
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_RD = 0x0100  # flags of dnspython's make_query: RD only

Labels = tuple[bytes, ...]  # lower-case labels of a name, without the root label


@dataclass(frozen=True, slots=True)
class WireAnswer:
    """What the resolver keeps of a plain response (see ``milter.dns.resolver``)."""

    records: tuple[str, ...]
    ttl: float  # dnspython's ChainingResult.minimum_ttl
    nxdomain: bool


class _Declined(Exception):
    """Not the plain shape: dnspython decides."""


def question_bytes(name: str, qtype: int) -> bytes | None:
    """The question section for ``name`` (no final dot needed), or None when the name is
    not plain LDH(+underscore) labels (dnspython encodes it then: IDNA, escapes)."""
    labels = name.rstrip(".").encode("ascii", "replace").split(b".") if name.strip(".") else []
    if not all(_LABEL.match(label) for label in labels):
        return None
    wire = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    if len(wire) > 255:
        return None
    return wire + struct.pack("!HH", qtype, _IN)


Edns = tuple[int, int, int]
"""(version, flags, payload) of the OPT record dnspython adds (``Resolver.use_edns``)."""


def encode_query(qid: int, question: bytes, edns: Edns | None = None) -> bytes:
    """A query as dnspython's resolver sends it: RD, one question, and with ``edns`` an
    OPT record without options (extended rcode 0)."""
    if edns is None:
        return _HEADER.pack(qid, _RD, 1, 0, 0, 0) + question
    version, flags, payload = edns
    opt = b"\x00" + _RR.pack(_OPT, payload, (flags & 0xFF00FFFF) | (version << 16), 0)
    return _HEADER.pack(qid, _RD, 1, 0, 0, 1) + question + opt


def read_answer(wire: bytes, qid: int, question: bytes) -> WireAnswer | None:
    """The answer in ``wire`` to the query (``qid``, ``question``), or None when the
    response is not the plain shape (module docstring) or not for this query."""
    try:
        return _read(wire, qid, question)
    except (_Declined, struct.error, IndexError):
        return None


def _read(wire: bytes, qid: int, question: bytes) -> WireAnswer | None:
    rid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    rcode = flags & 0x000F
    if rid != qid or not flags & 0x8000 or flags & 0x7A00 or rcode not in (0, 3) or qdcount != 1:
        return None  # QR unset, opcode not QUERY, TC set, other rcodes, several questions
    end_question = 12 + len(question)
    if wire[12:end_question].lower() != question.lower():
        return None
    qtype = int.from_bytes(question[-4:-2], "big")
    qname, _ = _name(question, 0)
    pos = end_question
    answer: dict[tuple[Labels, int], _RRset] = {}
    authority: dict[tuple[Labels, int], _RRset] = {}
    for section, count in ((answer, ancount), (authority, nscount)):
        for _ in range(count):
            pos = _record(wire, pos, section)
    opt_seen = False
    for _ in range(arcount):
        if wire[pos : pos + 3] == b"\x00\x00\x29":  # the OPT record (owner root, type 41)
            pos = _opt(wire, pos, seen=opt_seen)
            opt_seen = True
        else:
            pos = _record(wire, pos, {})
    if pos != len(wire):
        return None
    return _chain(answer, authority, qname, qtype, nxdomain=rcode == 3)


class _RRset:
    __slots__ = ("records", "seen", "ttl")

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.records: list[tuple[str, object]] = []  # (text form, rdata for follow-ups)
        self.seen: set[object] = set()

    def add(self, rtype: int, ttl: int, text: str, key: object, rdata: object) -> None:
        self.ttl = min(self.ttl, ttl) if self.records else ttl
        if rtype in (CNAME, SOA):  # singleton types: the last one stays
            self.records.clear()
            self.seen.clear()
        if key not in self.seen:
            self.seen.add(key)
            self.records.append((text, rdata))


def _record(wire: bytes, pos: int, section: dict[tuple[Labels, int], _RRset]) -> int:
    owner, pos = _name(wire, pos)
    rtype: int
    rclass: int
    ttl: int
    rdlength: int
    rtype, rclass, ttl, rdlength = _RR.unpack_from(wire, pos)
    pos += _RR.size
    end = pos + rdlength
    if rclass != _IN or end > len(wire) or rdlength == 0:
        raise _Declined
    text, key, rdata = _rdata(wire, pos, end, rtype)
    rrset = section.get((owner, rtype))
    if rrset is None:
        rrset = section[(owner, rtype)] = _RRset(ttl)
    rrset.add(rtype, 0 if ttl > 0x7FFFFFFF else ttl, text, key, rdata)
    return end


def _opt(wire: bytes, pos: int, *, seen: bool) -> int:
    """Skip the response's OPT record: one, without options, extended rcode 0 (so the
    rcode is the header's); anything else is dnspython's to judge (BadEDNS, other rcodes)."""
    _, _, ttl, rdlength = _RR.unpack_from(wire, pos + 1)
    if seen or ttl >> 24 or rdlength:
        raise _Declined
    return pos + 1 + _RR.size


def _rdata(wire: bytes, pos: int, end: int, rtype: int) -> tuple[str, object, object]:
    """(text form, equality key, parsed value) of one record's data, which must fill
    exactly ``wire[pos:end]``."""
    if rtype == A and end - pos == 4:
        return socket.inet_ntoa(wire[pos:end]), wire[pos:end], None
    if rtype == AAAA and end - pos == 16:
        return dns.ipv6.inet_ntoa(wire[pos:end]), wire[pos:end], None
    if rtype == TXT:
        strings = []
        while pos < end:
            size = wire[pos]
            if pos + 1 + size > end:
                raise _Declined
            strings.append(wire[pos + 1 : pos + 1 + size])
            pos += 1 + size
        return b"".join(strings).decode("utf-8", "replace"), tuple(strings), None
    if rtype in (CNAME, PTR, NS):
        target, after = _name(wire, pos)
        if after != end:
            raise _Declined
        return _text(target), target, target
    if rtype == MX and end - pos >= 3:
        preference = int.from_bytes(wire[pos : pos + 2], "big")
        exchange, after = _name(wire, pos + 2)
        if after != end:
            raise _Declined
        return f"{preference} {_text(exchange)}", (preference, exchange), None
    if rtype == SOA:
        _, after = _name(wire, pos)
        _, after = _name(wire, after)
        if after + 20 != end:
            raise _Declined
        minimum = int.from_bytes(wire[end - 4 : end], "big")
        return "", wire[pos:end].lower(), minimum
    raise _Declined


def _name(wire: bytes, pos: int) -> tuple[Labels, int]:
    """A (possibly compressed) name at ``pos`` as dnspython reads it (pointers strictly
    backwards, labels up to 63 octets, 255 octets in all), and the position after it."""
    labels: list[bytes] = []
    biggest = pos
    after = -1
    size = 1
    while True:
        count = wire[pos]
        if count == 0:
            pos += 1
            break
        if count < 64:
            label = wire[pos + 1 : pos + 1 + count]
            if len(label) != count or not _LABEL.match(label):
                raise _Declined
            labels.append(label.lower())
            size += count + 1
            pos += count + 1
        elif count >= 192:
            pointer = ((count & 0x3F) << 8) | wire[pos + 1]
            if after < 0:
                after = pos + 2
            if pointer >= biggest:
                raise _Declined
            biggest = pointer
            pos = pointer
        else:
            raise _Declined
    if size > 255:
        raise _Declined
    return tuple(labels), after if after >= 0 else pos


def _text(labels: Labels) -> str:
    return b".".join(labels).decode("ascii")


def _chain(
    answer: dict[tuple[Labels, int], _RRset],
    authority: dict[tuple[Labels, int], _RRset],
    qname: Labels,
    qtype: int,
    *,
    nxdomain: bool,
) -> WireAnswer | None:
    """dnspython's ``Message.resolve_chaining`` and ``Answer`` on the parsed sections."""
    min_ttl = 0x7FFFFFFF  # dns.ttl.MAX_TTL
    found = None
    for _ in range(dns.message.MAX_CHAIN):
        found = answer.get((qname, qtype))
        if found is not None:
            min_ttl = min(min_ttl, found.ttl)
            break
        cname = answer.get((qname, CNAME)) if qtype != CNAME else None
        if cname is None:
            break
        min_ttl = min(min_ttl, cname.ttl)
        target = cname.records[0][1]
        assert isinstance(target, tuple)
        qname = target
    else:
        return None  # ChainTooLong: dnspython's error path
    if found is not None:
        if nxdomain:
            return None  # AnswerForNXDOMAIN: dnspython's error path
        return WireAnswer(tuple(text for text, _ in found.records), float(min_ttl), False)
    owner = qname
    while True:
        soa = authority.get((owner, SOA))
        if soa is not None:
            minimum = soa.records[0][1]
            assert isinstance(minimum, int)
            min_ttl = min(min_ttl, soa.ttl, minimum)
            break
        if not owner:
            min_ttl = min(min_ttl, int(dns.message.NEGATIVE_TTL_WITHOUT_SOA))
            break
        owner = owner[1:]
    return WireAnswer((), float(min_ttl), nxdomain)

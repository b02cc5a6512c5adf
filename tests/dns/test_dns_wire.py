"""The hand-written reader of plain DNS responses agrees with dnspython on every answer it
gives (and declines, rather than guesses, on everything else)."""

from __future__ import annotations

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.dns.stub import format_rdata
from milter.dns.wire import QTYPES, WireAnswer, encode_query, question_bytes, read_answer

labels = st.sampled_from(["a", "B", "mx", "_dmarc", "sel-1", "x" * 63, "fr", "Ameli"])
names = st.lists(labels, min_size=1, max_size=4).map(".".join).filter(lambda n: len(n) < 200)
ttls = st.sampled_from([0, 1, 60, 300, 3600, 2**31 - 1, 2**31, 2**32 - 1])
txt_strings = st.lists(st.binary(max_size=40), min_size=1, max_size=3)


def _rdata_text(rdtype: str, draw: st.DrawFn) -> str:
    if rdtype == "A":
        return draw(st.sampled_from(["192.0.2.1", "198.51.100.7", "0.0.0.0"]))
    if rdtype == "AAAA":
        return draw(
            st.sampled_from(["2001:db8::1", "::ffff:192.0.2.1", "2001:db8:0:0:1:0:0:1", "::"])
        )
    if rdtype == "TXT":
        strings = draw(txt_strings)
        return " ".join('"' + "".join(f"\\{b:03d}" for b in s) + '"' for s in strings)
    if rdtype == "MX":
        return f"{draw(st.integers(0, 65535))} {draw(st.one_of(names, st.just('')))}."
    return draw(names) + "."


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, int, bytes, bool]:
    """(response, query id, question, whether the reader must take it: it declines EDNS
    options, which dnspython reads)."""
    qtype = draw(st.sampled_from(sorted(QTYPES)))
    qname = draw(names)
    query = dns.message.make_query(qname, qtype)
    query.id = draw(st.integers(0, 65535))
    response = dns.message.make_response(query)
    edns = draw(st.sampled_from(["none", "plain", "do", "option"]))
    if edns != "none":  # the OPT record a resolver adds when asked with EDNS
        options = [dns.edns.GenericOption(10, b"12345678")] if edns == "option" else None
        response.use_edns(0, dns.flags.DO if edns == "do" else 0, 1232, options=options)
    rcode = draw(st.sampled_from([dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.BADVERS]))
    if rcode != dns.rcode.BADVERS or edns != "none":  # an extended rcode needs EDNS
        response.set_rcode(rcode)
    owner = qname
    for _ in range(draw(st.integers(0, 3))):  # a CNAME chain, sometimes with duplicates
        target = draw(names)
        for _ in range(draw(st.integers(1, 2))):
            response.answer.append(
                dns.rrset.from_text(owner + ".", draw(ttls), "IN", "CNAME", target + ".")
            )
        owner = draw(st.sampled_from([target, owner]))
    for _ in range(draw(st.integers(0, 3))):  # records at the chain's end or elsewhere
        at = draw(st.sampled_from([owner, qname, draw(names)]))
        rdtype = draw(
            st.sampled_from([dns.rdatatype.to_text(dns.rdatatype.from_text(qtype)), "A", "TXT"])
        )
        response.answer.append(
            dns.rrset.from_text(at + ".", draw(ttls), "IN", rdtype, _rdata_text(rdtype, draw))
        )
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.sampled_from([owner, qname, "fr", draw(names), ""]))
        soa = f"ns.{at}. host.{at}. 1 2 3 4 {draw(ttls)}" if at else "ns. host. 1 2 3 4 5"
        response.authority.append(dns.rrset.from_text(at + ".", draw(ttls), "IN", "SOA", soa))
    if draw(st.booleans()):
        response.authority.append(dns.rrset.from_text(qname + ".", 60, "IN", "NS", "ns1.example."))
    wire = response.to_wire(max_size=65535)  # names compressed, as servers send them
    question = question_bytes(qname, QTYPES[qtype])
    assert question is not None
    return wire, query.id, question, edns != "option"


def _dnspython(wire: bytes, qid: int, question: bytes) -> WireAnswer | str:
    """What our resolver keeps of ``wire`` going through dnspython, or why it does not."""
    qname = dns.name.from_wire(question, 0)[0]
    rdtype = dns.rdatatype.RdataType(int.from_bytes(question[-4:-2], "big"))
    query = dns.message.make_query(qname, rdtype)
    query.id = qid
    try:
        response = dns.message.from_wire(wire)
    except Exception as exc:  # noqa: BLE001 - any failure: dnspython ignores the datagram
        return type(exc).__name__
    if not query.is_response(response):
        return "not a response"
    if response.flags & dns.flags.TC or response.rcode() not in (
        dns.rcode.NOERROR,
        dns.rcode.NXDOMAIN,
    ):
        return "error rcode or truncated"
    try:
        chain = response.resolve_chaining()
    except dns.exception.DNSException as exc:
        return type(exc).__name__
    nxdomain = response.rcode() == dns.rcode.NXDOMAIN
    text = dns.rdatatype.to_text(rdtype)
    records = tuple(format_rdata(text, rd) for rd in chain.answer) if chain.answer else ()
    return WireAnswer(records, float(chain.minimum_ttl), nxdomain)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses())
def test_plain_responses_read_as_dnspython_reads_them(
    case: tuple[bytes, int, bytes, bool],
) -> None:
    wire, qid, question, must_read = case
    expected = _dnspython(wire, qid, question)
    ours = read_answer(wire, qid, question)
    if isinstance(expected, WireAnswer) and must_read:
        assert ours == expected
    elif isinstance(expected, WireAnswer):
        assert ours in (None, expected)
    else:
        assert ours is None, expected


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    responses(),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_damaged_responses_are_declined_or_read_as_dnspython_does(
    case: tuple[bytes, int, bytes, bool], damage: list[tuple[int, int]]
) -> None:
    wire, qid, question, _ = case
    data = bytearray(wire)
    for offset, value in damage:
        data[offset % len(data)] = value
    expected = _dnspython(bytes(data), qid, question)
    ours = read_answer(bytes(data), qid, question)
    assert ours is None or ours == expected


def test_plain_answers_are_read_without_dnspython() -> None:
    """The reader takes the usual shapes itself (else the fast path would never be used)."""
    query = dns.message.make_query("_dmarc.ameli.fr", "TXT")
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text("_dmarc.ameli.fr.", 300, "IN", "TXT", '"v=DMARC1; p=reject"')
    )
    question = question_bytes("_dmarc.ameli.fr", QTYPES["TXT"])
    assert question is not None
    assert read_answer(response.to_wire(), query.id, question) == WireAnswer(
        ("v=DMARC1; p=reject",), 300.0, False
    )
    nx = dns.message.make_response(query)
    nx.set_rcode(dns.rcode.NXDOMAIN)
    nx.authority.append(dns.rrset.from_text("fr.", 600, "IN", "SOA", "ns.fr. h.fr. 1 2 3 4 120"))
    assert read_answer(nx.to_wire(), query.id, question) == WireAnswer((), 120.0, True)
    assert read_answer(nx.to_wire(), query.id ^ 1, question) is None  # another query's


edns_settings = st.one_of(
    st.none(),
    st.tuples(
        st.just(0),
        st.sampled_from([0, dns.flags.DO, 0x01000000]),
        st.sampled_from([512, 1232, 4096]),
    ),
)


@settings(deadline=None)
@given(names, st.sampled_from(sorted(QTYPES)), st.integers(0, 65535), edns_settings)
def test_query_is_dnspythons(
    name: str, qtype: str, qid: int, edns: tuple[int, int, int] | None
) -> None:
    """The bytes dnspython's resolver sends (``_Resolution.next_request``: ``make_query``,
    then ``use_edns`` with the resolver's settings, -1 meaning none)."""
    query = dns.message.make_query(name, qtype)
    query.use_edns(*(edns or (-1, 0, 0)))
    query.id = qid
    question = question_bytes(name, QTYPES[qtype])
    assert question is not None
    assert encode_query(qid, question, edns) == query.to_wire()


def test_names_dnspython_must_encode_are_declined() -> None:
    assert question_bytes("café.fr", 16) is None  # IDNA
    assert question_bytes("a b.fr", 16) is None  # an escape
    assert question_bytes("a..fr", 16) is None  # empty label
    assert question_bytes("x" * 64 + ".fr", 16) is None
    assert question_bytes(".".join(["abcdefghi"] * 26), 16) is None  # over 255 octets

"""Tocsin's faster dkimpy (cached key parse, canonical body and relaxed headers computed
once per message) gives the verdicts of dkimpy's own code, on generated signed messages,
intact and tampered with, for DKIM (RSA and Ed25519, every c=, with and without l=) and
ARC (one and two instances)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import dkim
import dkim.canonicalization as canon
import dkim.util
import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.auth.arc import check_arc
from milter.auth.dkim import verify_dkim
from milter.auth.dkimpy_btag import RE_BTAG, original_re_btag
from milter.auth.dkimpy_feed import (
    FastRelaxed,
    MemoryBody,
    SharedDigestHash,
    original_hash_through,
    prepare,
)
from milter.auth.dkimpy_keys import evaluate_pk, original_evaluate_pk
from milter.auth.dkimpy_rsa import original_rsassa_verify, rsassa_pkcs1_v1_5_verify
from milter.auth.dkimpy_tags import original_parse_tag_value, parse_tag_value, parse_tags
from milter.dns.fake import FakeResolver
from milter.model.auth import AuthStatus
from tests.auth.test_dkim import make_key

DOMAIN = "ameli.fr"
SEALER = "listes.example.org"

values = st.lists(
    st.sampled_from(
        [b"a", b"B", b" ", b"  ", b"\t", b"\r\n ", b"\r\n\t", b"\n ", b"x y", b"\xc3\xa9"]
    ),
    min_size=1,
    max_size=8,
).map(b"".join)
names = st.sampled_from([b"From", b"To", b"Subject", b"subJect", b"Date", b"X-Tag", b"Reply-To"])
header_lists = st.lists(st.tuples(names, values), min_size=1, max_size=8)
field_names = st.sampled_from([b"From", b"subject ", b"X-Tag\t", b"TO"])  # canonicalised alone
bodies = st.lists(
    st.sampled_from(
        [b"Bonjour", b" ", b"  ", b"\t", b"\r\n", b"\n", b"b  c", b"\r", b"\xe2\x80\x99"]
    ),
    max_size=30,
).map(b"".join)


def _message(headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [b"From: Assurance Maladie <ne-pas-repondre@ameli.fr>\r\n"]
    lines += [name + b":" + value + b"\r\n" for name, value in headers]
    return b"".join(lines) + b"\r\n" + body


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda m: m,
    "body appended": lambda m: m + b"Ajout\r\n",
    "blank in body": lambda m: m.replace(b"\r\n\r\n", b"\r\n\r\n ", 1),
    "body blank doubled": lambda m: m[::-1].replace(b" ", b"  ", 1)[::-1],
    "header blank doubled": lambda m: m.replace(b": ", b":  ", 1),
    "header refolded": lambda m: m.replace(b"Subject:", b"Subject:\r\n ", 1),
    "subject changed": lambda m: m.replace(b"Subject:", b"Subject: Re:", 1),
    "header added": lambda m: b"Subject: ajout\r\n" + m,
    "empty lines added": lambda m: m + b"\r\n\r\n",
}
tamperings = st.sampled_from(sorted(TAMPERINGS))


@cache
def _ed25519() -> tuple[bytes, str]:
    key = nacl.signing.SigningKey(b"\x07" * 32)
    return base64.b64encode(bytes(key)), base64.b64encode(bytes(key.verify_key)).decode()


def _sign(
    message: bytes, algorithm: str, c: tuple[bytes, bytes], length: bool
) -> tuple[bytes, str]:
    if algorithm == "ed25519-sha256":
        private, public = _ed25519()
        record = f"v=DKIM1; k=ed25519; p={public}"
    else:
        rsa = make_key(1024)
        private, record = rsa.private_pem, rsa.record()
    header = dkim.sign(
        message,
        b"sel",
        DOMAIN.encode(),
        private,
        canonicalize=c,
        include_headers=[b"from", b"to", b"subject", b"date"],
        length=length,
        signature_algorithm=algorithm.encode(),
    )
    return bytes(header) + message, record


@contextmanager
def plain_dkimpy() -> Iterator[None]:
    """dkimpy as shipped: its own canonicalisations, key parse, b= remover and RSA
    verification."""
    algorithms = dict(canon.ALGORITHMS)
    canon.ALGORITHMS.update({canon.Simple.name: canon.Simple, canon.Relaxed.name: canon.Relaxed})
    dkim.evaluate_pk = original_evaluate_pk
    dkim.parse_tag_value = original_parse_tag_value
    dkim.RSASSA_PKCS1_v1_5_verify = original_rsassa_verify
    dkim.RE_BTAG = original_re_btag
    dkim.RelaxedCanonicalization = canon.Relaxed
    dkim.HashThrough = original_hash_through
    try:
        yield
    finally:
        dkim.HashThrough = SharedDigestHash
        canon.ALGORITHMS.update(algorithms)
        dkim.evaluate_pk = evaluate_pk
        dkim.parse_tag_value = parse_tag_value
        dkim.RSASSA_PKCS1_v1_5_verify = rsassa_pkcs1_v1_5_verify
        dkim.RE_BTAG = RE_BTAG
        dkim.RelaxedCanonicalization = FastRelaxed


def _dnsfunc(records: dict[str, str]) -> Callable[..., bytes | None]:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        text = records.get(name.decode().rstrip(".").lower())
        return text.encode() if text else None

    return dnsfunc


def _dkimpy_verdicts(message: bytes, record: str) -> list[bool]:
    with plain_dkimpy():
        verifier = dkim.DKIM(message, minkey=0)
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
        verdicts = []
        for index in range(count):
            try:
                ok = verifier.verify(
                    idx=index, dnsfunc=_dnsfunc({f"sel._domainkey.{DOMAIN}": record})
                )
            except dkim.DKIMException:
                ok = False
            verdicts.append(bool(ok))
    return verdicts


signings = st.tuples(
    st.sampled_from(["rsa-sha256", "ed25519-sha256"]),
    st.tuples(st.sampled_from([b"simple", b"relaxed"]), st.sampled_from([b"simple", b"relaxed"])),
    st.booleans(),  # l=
    st.booleans(),  # a second signature with the other c= and l= under the same key
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_lists, bodies, signings, tamperings)
async def test_dkim_verdicts_are_dkimpys(
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    signing: tuple[str, tuple[bytes, bytes], bool, bool],
    tampering: str,
) -> None:
    algorithm, c, length, twice = signing
    signed, record = _sign(_message(headers, body), algorithm, c, length)
    if twice:  # the key parse and the canonical body are shared by the two
        signed, _ = _sign(signed, algorithm, (c[1], c[0]), not length)
    message = TAMPERINGS[tampering](signed)
    expected = _dkimpy_verdicts(message, record)
    resolver = FakeResolver({(f"sel._domainkey.{DOMAIN}", "TXT"): record})
    results = await verify_dkim(prepare(message), resolver)
    ours = [r.result in (AuthStatus.PASS, AuthStatus.POLICY) for r in results]
    assert ours == (expected or [False]), [r.reason for r in results]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_lists, bodies, st.sampled_from([b"simple", b"relaxed"]), tamperings)
async def test_signatures_with_other_hashes_of_one_body_are_dkimpys(
    headers: list[tuple[bytes, bytes]], body: bytes, c_body: bytes, tampering: str
) -> None:
    """Two signatures over one canonical body, rsa-sha1 and rsa-sha256: the body digest
    one computed is not the other's."""
    signed, record = _sign(_message(headers, body), "rsa-sha256", (b"relaxed", c_body), False)
    signed, _ = _sign(signed, "rsa-sha1", (b"simple", c_body), False)
    message = TAMPERINGS[tampering](signed)
    expected = _dkimpy_verdicts(message, record)
    resolver = FakeResolver({(f"sel._domainkey.{DOMAIN}", "TXT"): record})
    results = await verify_dkim(prepare(message), resolver)
    ours = [r.result in (AuthStatus.PASS, AuthStatus.POLICY) for r in results]
    assert ours == expected, [r.reason for r in results]


class _CountingHash:
    """A sha256 that counts the octets it is given."""

    def __init__(self) -> None:
        self.inner = hashlib.sha256()
        self.name = self.inner.name
        self.octets = 0

    def update(self, data: bytes) -> None:
        self.octets += len(data)
        self.inner.update(data)

    def digest(self) -> bytes:
        return self.inner.digest()


@settings(max_examples=300, deadline=None)
@given(
    bodies,
    st.lists(st.sampled_from([b"", b"x", b"\r\n", b"Corps", None]), max_size=3),
    st.booleans(),
)
def test_shared_digest_hash_is_the_digest_of_all_it_is_given(
    body: bytes, then: list[bytes | None], digest_between: bool
) -> None:
    """Whether the first data is the canonical body just handed to dkimpy (its digest
    known or not yet), the digest is hashlib's of everything given; a known body digest
    is not computed again."""
    shared = MemoryBody(body)
    form = shared.canonical(relaxed=True)
    first = _CountingHash()
    hashing = SharedDigestHash(first)
    hashing.update(form)
    assert hashing.digest() == hashlib.sha256(form).digest()
    assert first.octets == len(form)
    again = _CountingHash()
    hashing = SharedDigestHash(again)
    hashing.update(shared.canonical(relaxed=True))  # handed again, its digest known
    if digest_between:
        assert hashing.digest() == hashlib.sha256(form).digest()
        assert again.octets == 0
    more = [form if data is None else data for data in then]  # None: the handed body again
    for data in more:
        hashing.update(shared.canonical(relaxed=True) if data is form else data)
    assert hashing.digest() == hashlib.sha256(form + b"".join(more)).digest()
    assert hashing.hexdigest() == hashlib.sha256(form + b"".join(more)).hexdigest()
    other = SharedDigestHash(hashlib.sha256())
    other.update(form + b"x")  # not the handed body: hashed, not looked up
    assert other.digest() == hashlib.sha256(form + b"x").digest()


@cache
def _sealed(instances: int, c_body: bytes) -> tuple[bytes, dict[str, str]]:
    rsa = make_key(1024)
    message = _message(
        [(b"To", b" a@example.org"), (b"Subject", b"  Votre\r\n\tdossier ")], b"Corps  \r\n"
    )
    signed, record = _sign(message, "rsa-sha256", (b"relaxed", c_body), False)
    records = {f"sel._domainkey.{DOMAIN}": record, f"arc._domainkey.{SEALER}": rsa.record()}
    for instance in range(instances):
        authres = f"Authentication-Results: {SEALER}; dkim=pass header.d={DOMAIN}\r\n".encode()
        if instance:
            authres = f"Authentication-Results: {SEALER}; arc=pass\r\n".encode()
        signed = authres + signed
        seal = dkim.arc_sign(
            signed,
            b"arc",
            SEALER.encode(),
            rsa.private_pem,
            SEALER.encode(),
            timestamp=1_780_000_000,
        )
        signed = b"".join(seal) + signed
    return signed, records


def _dkimpy_arc(message: bytes, records: dict[str, str]) -> bytes | None:
    with plain_dkimpy():
        try:
            cv, _, _ = dkim.ARC(message, minkey=1024).verify(dnsfunc=_dnsfunc(records))
        except dkim.DKIMException:
            return dkim.CV_Fail
    return cv  # type: ignore[no-any-return]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 2]), st.sampled_from([b"simple", b"relaxed"]), tamperings)
async def test_arc_verdicts_are_dkimpys(instances: int, c_body: bytes, tampering: str) -> None:
    sealed, records = _sealed(instances, c_body)
    message = TAMPERINGS[tampering](sealed)
    expected = {dkim.CV_Pass: AuthStatus.PASS, dkim.CV_None: AuthStatus.NONE}.get(
        _dkimpy_arc(message, records),  # type: ignore[arg-type]
        AuthStatus.FAIL,
    )
    resolver = FakeResolver({(name, "TXT"): text for name, text in records.items()})
    prepared = prepare(message)
    await verify_dkim(prepared, resolver)  # as the auth check does: DKIM and ARC share it
    assert (await check_arc(prepared, resolver)).status is expected


def test_intact_seal_passes_and_tampered_one_fails() -> None:
    """The ARC property test above compares something: dkimpy itself tells these apart."""
    sealed, records = _sealed(2, b"relaxed")
    assert _dkimpy_arc(sealed, records) == dkim.CV_Pass
    assert _dkimpy_arc(sealed + b"Ajout\r\n", records) == dkim.CV_Fail


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(field_names, values), max_size=6))
def test_relaxed_headers_are_dkimpys(headers: list[tuple[bytes, bytes]]) -> None:
    listed = [list(field) for field in headers]
    assert FastRelaxed.canonicalize_headers(listed) == canon.Relaxed.canonicalize_headers(listed)
    assert FastRelaxed.canonicalize_headers(listed) == canon.Relaxed.canonicalize_headers(listed)


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_memory_body_forms_are_dkimpys(body: bytes) -> None:
    """A MemoryBody holds the body as received (bare LFs too); its canonical forms are
    dkimpy's canonicalisations of the body dkimpy's own parse gives (LFs made CRLF)."""
    shared = MemoryBody(body)
    _, parsed = dkim.rfc822_parse(b"A: b\r\n\r\n" + body)
    for _ in range(2):  # computed once, then served again
        assert FastRelaxed.canonicalize_body(shared) == canon.Relaxed.canonicalize_body(parsed)
        assert canon.ALGORITHMS[b"simple"].canonicalize_body(
            shared
        ) == canon.Simple.canonicalize_body(parsed)
    assert shared.data == parsed


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n",
        b"a \r\nb\r\n",  # a blank before a line end
        b"a\t\r\nb",
        b"\r\nab  c\r\n",  # a CRLF first, then two spaces
        b"a\nb \r\n",  # a bare LF
        b"a\r\r\n \r\r\n",  # a lone CR before a CRLF, after a blank
        b"x y\r\n\r\n\r\n",
        b"x\ty\r\n",
        b"x y \r\n\r\n",
    ],
)
def test_memory_body_edge_cases_are_dkimpys(body: bytes) -> None:
    """The cases the single line-end scan of a relaxed MemoryBody must tell apart."""
    _, parsed = dkim.rfc822_parse(b"A: b\r\n\r\n" + body)
    assert MemoryBody(body).canonical(relaxed=True) == canon.Relaxed.canonicalize_body(parsed)
    assert MemoryBody(body).canonical(relaxed=False) == canon.Simple.canonicalize_body(parsed)


def test_key_record_parsed_once() -> None:
    record = make_key(1024).record()
    evaluate_pk(b"a._domainkey.x.", record)
    first = evaluate_pk(b"b._domainkey.y.", record)
    assert evaluate_pk(b"c._domainkey.z.", record)[0] is first[0]  # the same parsed key
    assert first[1:] == tuple(original_evaluate_pk(b"n.", record))[1:] == (1024, b"rsa", False)
    with pytest.raises(dkim.KeyFormatError, match=r"missing public key: b'n'"):
        evaluate_pk(b"n", b"")


def test_tag_lists_parsed_once_and_copied() -> None:
    value = b"v=1; a=rsa-sha256; d=ameli.fr; s=sel; h=from:to; bh=AAAA; b=BBBB"
    first = parse_tag_value(value)
    first[b"c"] = b"relaxed/relaxed"  # what ARC does to its copy
    assert parse_tag_value(value) == original_parse_tag_value(value)
    assert b"c" not in parse_tag_value(value)
    with pytest.raises(dkim.util.InvalidTagValueList):
        parse_tag_value(b"v=1; v=2")  # a duplicate tag, as dkimpy says


arc_names = st.sampled_from(
    [b"ARC-Seal", b"arc-message-signature", b"ARC-Authentication-Results", b"From", b"X-Tag"]
)
arc_values = st.lists(
    st.sampled_from([b" i=1;", b" i=2; ", b"\ti =\r\n 3;", b" a=rsa", b"  x", b"\r\n y", b" I=1"]),
    min_size=1,
    max_size=4,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(arc_names, arc_values), max_size=8))
def test_arc_sets_are_sorted_as_dkimpy_sorts_them(headers: list[tuple[bytes, bytes]]) -> None:
    """ARC.sorted_arc_headers reads the relaxed forms FastRelaxed gives (installed in
    dkimpy's namespace): the same instances and sets as with dkimpy's own class."""
    verifier = dkim.ARC(None)
    verifier.headers = [list(field) for field in headers]
    assert dkim.RelaxedCanonicalization is FastRelaxed
    ours = verifier.sorted_arc_headers()
    with plain_dkimpy():
        assert verifier.sorted_arc_headers() == ours


tag_lists = st.lists(
    st.sampled_from(
        [
            *(b"v=1", b"a=rsa-sha256", b" d = ameli.fr ", b"b=AB\r\n CD", b"=x", b"1a=x"),
            *(b"_a=x", b"\xc3\xa9=x", b"a", b"", b" ", b"a=", b"a=b=c", b"v=2", b"\tv\t=\t1"),
            *(b"A=x", b"\x00"),
        ]
    ),
    max_size=6,
).map(lambda specs: b";".join(specs) + (b";" if len(specs) % 2 else b""))


def _outcome(parse: Callable[[bytes], dict[bytes, bytes]], value: bytes) -> object:
    try:
        return parse(value)
    except dkim.util.InvalidTagValueList as exc:
        return type(exc), exc.args


@settings(max_examples=1000, deadline=None)
@given(st.one_of(tag_lists, st.binary(max_size=30)))
def test_tag_lists_are_parsed_as_dkimpy_parses_them(value: bytes) -> None:
    assert _outcome(parse_tags, value) == _outcome(original_parse_tag_value, value)

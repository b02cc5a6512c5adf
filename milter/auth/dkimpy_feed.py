"""Hand a message to dkimpy without its whole-message passes, and canonicalise bodies faster.

Two costs of dkimpy showed in the load profile (docs/performance.md), both paid once per
verifier object (one for DKIM, one for ARC) on every message:

- ``dkim.rfc822_parse`` splits the *whole* message into lines with a regular expression
  and joins the body back with CRLF: two full copies and ~7 % of Tocsin's CPU.
  ``split_message`` finds the end of the header block itself, lets dkimpy parse only that
  block, and rewrites the body's line ends only when it has bare LFs (for ``prepare``,
  only once a signature asks for the body). The result is the same as ``rfc822_parse``'s
  (tests/auth/test_dkimpy_feed.py checks it on random input).
- dkimpy's "relaxed" body canonicalisation (RFC 6376 §3.4.4) replaces every run of
  spaces and tabs, *including every single space*, so it rebuilds the body word by word
  (~8 ms for an 80 KB newsletter on the benchmark machine). ``FastRelaxed`` gives the same
  bytes but only touches what changes — runs of two or more blanks, tabs, blanks before a
  line end — and skips a pass when a ``in`` scan (C speed) shows nothing to do. It is
  registered in dkimpy's own table of canonicalisation algorithms
  (``dkim.canonicalization.ALGORITHMS``), which is how dkimpy looks ``c=relaxed`` up; the
  same test compares it with dkimpy's implementation.

A message the front-end spooled to disk (`milter.mime.spool`) is never read whole into
memory: its body goes to dkimpy as a `SpooledBody`, which the registered "simple" and
"relaxed" algorithms canonicalise a chunk at a time into a temporary file, mapped read-only;
dkimpy then hashes (and cuts at ``l=``) a ``memoryview`` of that map, as it would bytes.
Bodies shared by DKIM and ARC are canonicalised once per algorithm.

An in-memory body goes to dkimpy as a `MemoryBody` for the same reason: dkimpy
canonicalises the body again for every signature (each DKIM signature, each ARC
instance's message signature); the canonical forms are kept for the message, one per
algorithm. dkimpy's "relaxed" *header* canonicalisation (two regex substitutions per
field, over every header field, once per signature) is replaced the same way by
`FastRelaxed.canonicalize_headers`: substitutions only where a field has something to
change, and the whole list's result remembered for the few header lists last seen
(DKIM and ARC hand it equal lists). And the digest of a canonical body is computed once
per hash algorithm (`SharedDigestHash`), not once per signature over it.
tests/auth/test_dkimpy_fast.py compares verdicts with dkimpy's own code on generated and
tampered signed messages.
"""

from __future__ import annotations

import mmap
import re
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

import dkim
import dkim.canonicalization as canon

from milter.mime.spool import RawMessage

__all__ = [
    "DkimpyMessage",
    "FastRelaxed",
    "FastSimple",
    "MemoryBody",
    "SharedDigestHash",
    "SpooledBody",
    "canonical_chunks",
    "load_verifier",
    "original_hash_through",
    "parse_header_block",
    "prepare",
    "split_message",
]

_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")  # what _end_of_headers finds, faster
_BLANK_LINE = re.compile(rb"\n\r?\n")
_BARE_LF = re.compile(rb"(?<!\r)\n")
# The scans below start with a literal LF, so ``re`` runs from LF to LF at C speed and
# looks behind only there (``_BARE_LF``'s own search tries every position: ~25x slower).
_BARE_LF_AT = re.compile(rb"\n(?<!\r\n)")  # an LF without its CR
_BLANK_BEFORE_CRLF = re.compile(rb"\n(?<=[\t ]\r\n)")  # " \r\n" or "\t\r\n"
_LINE_END_WORK = re.compile(rb"\n(?<![^\t ]\r\n)")  # either of the two (or a CRLF at 0)
_TWO_SPACES = re.compile(rb"  ")  # ``re``'s literal search: ~1.6x faster than ``in``
_TRAILING_BLANKS = re.compile(rb"[\t ]+\r\n")
_BLANK_RUNS = re.compile(rb"[\t ]{2,}|\t")
_WSP_RUNS = re.compile(rb"[\t ]+")
_LINE_END = re.compile(rb"\r?\n")  # dkim.rfc822_parse's: what _header_lines splits at
_FIELD_NAME = re.compile(rb"([\x21-\x7e]+?):")  # dkim.rfc822_parse's, compiled once
_HEADER_MEMO_SIZE = 4  # header lists whose relaxed form is remembered (one message: 1-2)
_HEADER_MEMO: dict[tuple[tuple[bytes, ...], ...], list[tuple[bytes, bytes]]] = {}

# What may change with the next chunk, carried over (found by _tail_start, faster)
_RELAXED_TAIL = re.compile(rb"[\t ]*\r?\Z")
_SIMPLE_TAIL = re.compile(rb"\r?\Z")
_CRLF_RUN = 64 * 1024


class SpooledBody:
    """The body of a spooled message, for dkimpy: canonicalised on demand, once per
    algorithm, into a mapped temporary file (see the module docstring)."""

    def __init__(self, source: RawMessage, start: int) -> None:
        self.source = source
        self.start = start
        self._canonical: dict[bool, memoryview] = {}
        self.digests: dict[bool, dict[str, bytes]] = {False: {}, True: {}}  # see _hand

    def canonical(self, *, relaxed: bool) -> memoryview:
        """The canonical body (RFC 6376 §3.4.3 simple, §3.4.4 relaxed), CRLF line ends."""
        if relaxed not in self._canonical:
            self._canonical[relaxed] = self._write(relaxed)
        _hand(self, relaxed)
        return self._canonical[relaxed]

    def _write(self, relaxed: bool) -> memoryview:
        with tempfile.TemporaryFile(dir=self.source.directory) as out:
            for piece in canonical_chunks(self.source.chunks(self.start), relaxed=relaxed):
                out.write(piece)
            out.flush()
            size = out.tell()
            if size == 0:
                return memoryview(b"")
            return memoryview(mmap.mmap(out.fileno(), size, access=mmap.ACCESS_READ))


class MemoryBody:
    """An in-memory body for dkimpy: each canonical form computed once, on demand, and
    shared by every signature of the message (see the module docstring).

    ``data`` may still have bare LFs: they become CRLF (as ``dkim.rfc822_parse`` does)
    only when a canonical form is first asked for, so a message without signatures never
    pays for a search of its body."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._crlf: bytes | None = None
        self._canonical: dict[bool, bytes] = {}
        self.digests: dict[bool, dict[str, bytes]] = {False: {}, True: {}}  # see _hand

    @property
    def data(self) -> bytes:
        """The body with CRLF line ends, what ``dkim.rfc822_parse`` gives."""
        if self._crlf is None:
            self._crlf = _crlf_line_ends(self._data)
        return self._crlf

    def canonical(self, *, relaxed: bool) -> bytes:
        """The canonical body (RFC 6376 §3.4.3 simple, §3.4.4 relaxed)."""
        form = self._canonical.get(relaxed)
        if form is None:
            if not relaxed:
                form = _simple_body(self.data)
            elif self._crlf is None and _LINE_END_WORK.search(self._data) is None:
                # One scan for both questions: every LF has its CR (the data is already
                # what ``data`` would give) and no blank precedes a line end.
                self._crlf = self._data
                form = _relaxed_finish(_compress_blanks(self._data))
            else:
                form = _relaxed_body(self.data)
            self._canonical[relaxed] = form
        _hand(self, relaxed)
        return form


_Body = MemoryBody | SpooledBody
original_hash_through = dkim.HashThrough


class _Handed:
    """The canonical body last handed to dkimpy: a weak reference to its owner (nothing
    kept alive), and which form."""

    owner: weakref.ref[_Body] | None = None
    relaxed = False


_HANDED = _Handed()


def _hand(owner: _Body, relaxed: bool) -> None:
    """Remember that ``owner``'s canonical form is handed to dkimpy (`SharedDigestHash`)."""
    _HANDED.owner, _HANDED.relaxed = weakref.ref(owner), relaxed


def _known_digests(data: object) -> dict[str, bytes] | None:
    """The digests (by hash name) of ``data`` when it is the canonical body last handed to
    dkimpy, so far computed for this message; None for any other data."""
    owner = _HANDED.owner() if _HANDED.owner is not None else None
    if owner is None or owner._canonical.get(_HANDED.relaxed) is not data:
        return None
    return owner.digests[_HANDED.relaxed]


class SharedDigestHash(dkim.HashThrough):  # type: ignore[misc]
    """``dkim.HashThrough`` (what dkimpy hashes bodies and headers with), which does not
    hash a message's canonical body again for the same hash algorithm.

    dkimpy hashes the canonical body once per signature: each DKIM-Signature and each
    ARC-Message-Signature, although they mostly share one canonicalisation (and so one
    `MemoryBody` form, the same object). When the first data given is the canonical body
    just handed to dkimpy (`_known_digests`: the same object, nothing else), hashing waits:
    ``digest`` gives the digest already computed for it, or computes it and keeps it for
    the message. Any further ``update`` hashes the waiting body first, so the digest is
    always the one of everything given (tests/auth/test_dkimpy_fast.py)."""

    def __init__(self, hasher: Any, debug: bool = False) -> None:
        super().__init__(hasher, debug)
        self._updated = False
        self._waiting: tuple[Any, dict[str, bytes]] | None = None  # (body, its digests)

    def update(self, data: Any) -> None:
        """Hash ``data`` (the first, a known canonical body, only when its digest is asked)."""
        if not self._updated:
            self._updated = True
            known = _known_digests(data)
            if known is not None:
                self._waiting = (data, known)
                if self.debug:
                    self.data.append(data)
                return
        self._catch_up()
        super().update(data)
        if not self.debug:  # nothing more to decide: straight to hashlib from now on
            self.update = self.hasher.update  # type: ignore[method-assign]

    def _catch_up(self) -> None:
        if self._waiting is not None:
            self.hasher.update(self._waiting[0])
            self._waiting = None

    def digest(self) -> bytes:
        """The digest of all the data given."""
        if self._waiting is not None:
            known = self._waiting[1]
            found = known.get(self.name)
            if found is None:
                self._catch_up()
                found = known[self.name] = self.hasher.digest()
            return found
        return self.hasher.digest()  # type: ignore[no-any-return]

    def hexdigest(self) -> str:
        """The digest of all the data given, in hexadecimal."""
        return self.digest().hex()


def canonical_chunks(chunks: Iterable[bytes], *, relaxed: bool) -> Iterator[bytes]:
    """The canonical form of the body given in ``chunks`` (cut anywhere), in pieces:
    bare LFs become CRLF (as ``dkim.rfc822_parse`` does), then the simple or relaxed body
    canonicalisation, equal to dkimpy's on the joined body (tests/auth/test_dkimpy_feed.py).

    What the next chunk may change is carried over: a final CR (it may start a CRLF),
    final blanks (relaxed: dropped before a line end, one space otherwise), and the empty
    lines at the end (dropped at the end of the body), which are only counted."""
    carry, held, wrote = b"", 0, False
    for data in chain(chunks, (None,)):
        buf = carry + data if data is not None else carry
        carry = b""
        if data is not None:
            cut = _tail_start(buf, relaxed=relaxed)
            carry = buf[cut:]
            if relaxed and carry[:1] in (b" ", b"\t"):
                carry = b" " + carry[-1:] if carry.endswith(b"\r") else b" "
            buf = buf[:cut]
        buf = _crlf_line_ends(buf)
        if relaxed:
            buf = FastRelaxed.canonicalize_lines(buf)
        head, ending = _split_empty_lines(buf)
        if head:
            yield from _crlfs(held)
            yield head
            held, wrote = ending, True
        else:
            held += ending
    if wrote or not relaxed:
        yield b"\r\n"  # one line end after the last non-empty line (or an empty body)


def _tail_start(buf: bytes, *, relaxed: bool) -> int:
    """Where ``_RELAXED_TAIL`` (relaxed) or ``_SIMPLE_TAIL`` matches in ``buf``: the start of
    its final CR (simple), or of its final blanks and CR (relaxed). With bytes methods: the
    patterns, which may match nothing before the end, made ``re`` try every position of
    the chunk (~4 ms per 64 KB chunk, ~2.6 s of CPU for a spooled 40 MB body)."""
    end = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
    return len(buf[:end].rstrip(b" \t")) if relaxed else end


def _split_empty_lines(buf: bytes) -> tuple[bytes, int]:
    """``buf`` without its final run of CRLFs, and how many CRLFs that run held
    (a CR before it is not part of it: after LF normalisation every LF has its CR)."""
    stripped = buf.rstrip(b"\r\n")
    trail = buf[len(stripped) :]
    if not trail or trail.endswith(b"\r"):
        return buf, 0
    lone_cr = trail.rfind(b"\r\r")
    pairs = trail[lone_cr + 1 :] if lone_cr >= 0 else trail
    return buf[: len(buf) - len(pairs)], len(pairs) // 2


def _crlfs(count: int) -> Iterator[bytes]:
    for _ in range(count // _CRLF_RUN):
        yield b"\r\n" * _CRLF_RUN
    if count % _CRLF_RUN:
        yield b"\r\n" * (count % _CRLF_RUN)


DkimpyMessage = tuple[list[list[bytes]], "bytes | MemoryBody | SpooledBody"]
"""dkimpy's view of a message: [[name, value-with-CRLF], ...] and the CRLF body."""


def split_message(message: bytes) -> DkimpyMessage:
    """What ``dkim.rfc822_parse(message)`` returns, without splitting the body into lines.

    Raises ``dkim.MessageFormatError`` exactly when dkimpy would (a bad header line).
    """
    headers, body = _split(message)
    return headers, _crlf_line_ends(body) if isinstance(body, bytes) else body


def _split(message: bytes) -> DkimpyMessage:
    """``split_message`` with the body's bare LFs left as they are."""
    if message.startswith((b"\n", b"\r\n")):  # an empty first line: no headers at all
        return [], message[1 if message.startswith(b"\n") else 2 :]
    if (end := _end_of_headers(message)) is None:  # no body: small, dkimpy's way
        return dkim.rfc822_parse(message)  # type: ignore[no-any-return]
    # the leftmost match starts at the last header line's own line end
    return parse_header_block(message[: end[0]]), message[end[1] :]


def _end_of_headers(data: bytes) -> tuple[int, int] | None:
    """Start and end of the leftmost ``\r?\n\r?\n`` in ``data`` (``_END_OF_HEADERS``).

    Searched as ``\n\r?\n``, a CR just before it taken in: the same match (a match that
    starts with CR has its LF next), but ``re`` runs from LF to LF at C speed instead of
    trying the pattern at every position (~1 us instead of ~35 for a 2 KB header)."""
    found = _BLANK_LINE.search(data)
    if found is None:
        return None
    start = found.start()
    return (start - 1 if start and data[start - 1] == 0x0D else start), found.end()


def _header_lines(block: bytes) -> list[bytes]:
    """``_LINE_END.split(block)`` (dkimpy's split at CRLF or LF) with bytes methods: ``re``
    tried its optional-CR pattern at every position, ~20x slower."""
    lines = block.split(b"\n")
    if b"\r" in block:  # a CR just before a split LF belongs to the line end
        last = lines.pop()
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        lines.append(last)
    return lines


def _crlf_line_ends(body: bytes) -> bytes:
    """Bare LFs made CRLF, as ``dkim.rfc822_parse`` does (the body is copied only when it
    has one; the search for one costs ~0.4x the two counts it replaces)."""
    if _BARE_LF_AT.search(body) is not None:
        return _BARE_LF.sub(b"\r\n", body)
    return body


def parse_header_block(block: bytes) -> list[list[bytes]]:
    """``dkim.rfc822_parse(block)[0]`` for a header block without its empty line: the same
    loop with its two patterns compiled once (dkimpy passes them to ``re`` as text on every
    line, and the pattern cache lookups were most of the parse). Raises what it raises."""
    headers: list[list[bytes]] = []
    for line in _header_lines(block):
        if not line:
            break  # dkimpy: the end of the header block
        if line[0] in (0x09, 0x20):
            headers[-1][1] += line + b"\r\n"  # IndexError before any field, as dkimpy's
        elif (m := _FIELD_NAME.match(line)) is not None:
            headers.append([m.group(1), line[m.end(0) :] + b"\r\n"])
        elif not line.startswith(b"From "):
            raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {line!r}")
    return headers


def prepare(message: bytes | RawMessage) -> DkimpyMessage | bytes:
    """``split_message(message)`` to share between DKIM and ARC, or ``message`` itself when
    dkimpy cannot parse its header (the verifiers then report that as they always did).
    A spooled message's body stays in its spool file (a `SpooledBody`)."""
    if isinstance(message, RawMessage):
        if not message.spooled:
            return prepare(message.to_bytes())
        return _prepare_spooled(message)
    try:
        headers, body = _split(message)
    except (dkim.MessageFormatError, IndexError):  # IndexError: dkimpy on a leading fold
        return message
    return headers, MemoryBody(body) if isinstance(body, bytes) else body


def _prepare_spooled(message: RawMessage) -> DkimpyMessage | bytes:
    """``split_message`` for a spooled message: the header block parsed by dkimpy, the body
    left in the spool file."""
    block = message.header_block
    if block.startswith((b"\n", b"\r\n")):  # an empty first line: no headers at all
        return [], SpooledBody(message, 1 if block.startswith(b"\n") else 2)
    found = _end_of_headers(block)
    if found is None or message.body_offset >= message.size:  # no body (header block capped)
        return prepare(block)
    try:
        headers = parse_header_block(block[: found[0]])
    except (dkim.MessageFormatError, IndexError):
        return block  # the verifiers parse it again and report it as they always did
    return headers, SpooledBody(message, message.body_offset)


def load_verifier(cls: type[Any], message: DkimpyMessage | bytes, **options: object) -> Any:
    """A dkimpy ``DKIM`` or ``ARC`` object for ``message`` (raw, or from ``prepare``)."""
    if isinstance(message, bytes):
        return cls(message, **options)  # dkimpy parses it and raises what it raises
    verifier = cls(None, **options)
    headers, body = message
    verifier.headers = [list(field) for field in headers]  # dkimpy may edit its copy
    verifier.body = body
    return verifier


class FastRelaxed:
    """dkimpy's "relaxed" algorithm, copying less (body and headers: module docstring)."""

    name = canon.Relaxed.name

    @staticmethod
    def canonicalize_headers(headers: Sequence[Sequence[bytes]]) -> list[tuple[bytes, bytes]]:
        """RFC 6376 §3.4.2, as ``canon.Relaxed.canonicalize_headers`` gives it: lower-case
        names without trailing blanks, values unfolded, blank runs as one space, stripped."""
        if len(headers) < 2:  # dkimpy's own signature field, alone: never asked twice
            return [(name.lower().rstrip(), _relaxed_value(value)) for name, value in headers]
        key = tuple(map(tuple, headers))
        found = _HEADER_MEMO.get(key)
        if found is None:
            found = [(name.lower().rstrip(), _relaxed_value(value)) for name, value in key]
            if len(_HEADER_MEMO) >= _HEADER_MEMO_SIZE:
                del _HEADER_MEMO[next(iter(_HEADER_MEMO))]  # the oldest
            _HEADER_MEMO[key] = found
        return list(found)

    @staticmethod
    def canonicalize_lines(body: bytes) -> bytes:
        """The line-by-line part of RFC 6376 §3.4.4: no blanks before a line end, one
        space for every other run of blanks."""
        if _BLANK_BEFORE_CRLF.search(body) is not None:
            body = _TRAILING_BLANKS.sub(b"\r\n", body)
        return _compress_blanks(body)

    @staticmethod
    def canonicalize_body(body: bytes | MemoryBody | SpooledBody) -> bytes | memoryview:
        """RFC 6376 §3.4.4: drop blanks before line ends, one space per run, no empty tail."""
        if isinstance(body, (MemoryBody, SpooledBody)):
            return body.canonical(relaxed=True)
        return _relaxed_body(body)


class FastSimple:
    """dkimpy's "simple" algorithm, which also takes a `MemoryBody` or `SpooledBody`."""

    name = canon.Simple.name
    canonicalize_headers = staticmethod(canon.Simple.canonicalize_headers)

    @staticmethod
    def canonicalize_body(body: bytes | MemoryBody | SpooledBody) -> bytes | memoryview:
        """RFC 6376 §3.4.3: no empty lines at the end (one CRLF for an empty body)."""
        if isinstance(body, (MemoryBody, SpooledBody)):
            return body.canonical(relaxed=False)
        return _simple_body(body)


def _relaxed_value(value: bytes) -> bytes:
    """``compress_whitespace(unfold_header_value(value)).strip() + CRLF`` (dkimpy's relaxed
    header value), each substitution done only when the value has something it changes."""
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUNS.sub(b" ", value)
    return value.strip() + b"\r\n"


def _compress_blanks(body: bytes) -> bytes:
    """Every run of blanks as one space (with no blank before a line end left, the rest
    of the line-by-line relaxed body canonicalisation)."""
    if b"\t" in body or _TWO_SPACES.search(body) is not None:  # "\t": a memchr, ~free
        return _BLANK_RUNS.sub(b" ", body)
    return body


def _relaxed_body(body: bytes) -> bytes:
    return _relaxed_finish(FastRelaxed.canonicalize_lines(body))


def _relaxed_finish(body: bytes) -> bytes:
    """The end of RFC 6376 §3.4.4 on a body whose lines are canonical: no empty lines at
    the end, an empty body for a lone CRLF."""
    return bytes(canon.correct_empty_body(canon.strip_trailing_lines(body)))


def _simple_body(body: bytes) -> bytes:
    return bytes(canon.Simple.canonicalize_body(body))


canon.ALGORITHMS[FastRelaxed.name] = FastRelaxed
canon.ALGORITHMS[FastSimple.name] = FastSimple
# ARC.sorted_arc_headers canonicalises every header field of the message with the relaxed
# class it imported by name (not through ALGORITHMS): the same list, and so the same
# remembered result, as each of the chain's signatures hashes (~125 -> ~5 us per message).
dkim.RelaxedCanonicalization = FastRelaxed
dkim.HashThrough = SharedDigestHash  # looked up at call time by DKIM and ARC verification

"""The MIME tree of a message in a buffer (bytes or a spool file's ``mmap``), leaves by offset.

Why by hand: the standard library's parser (``email.feedparser``) keeps every line of every
part as ``str`` and joins them into each payload, so a 40 MB attachment costs several times
its size in memory; it has no mode that drops payloads, and no maintained streaming MIME
parser for Python fits (they build the same in-memory trees, or are unmaintained). This
module decides *structure* exactly as ``FeedParser`` does — where a header block ends
(``headerRE``, the missing-separator case), boundary lines (the whole line, trailing blanks,
any line ending; outer boundaries end inner parts, RFC 2046 §5.1.2), the preamble, repeated
boundary lines, the line end before a boundary belonging to it, ``message/*`` bodies parsed
as messages — and reuses the standard library for everything else: every header block is
parsed by ``email.parser.HeaderParser`` (so headers, boundaries, parameters and header
defects are the stdlib's own), small payloads and ``message/delivery-status`` bodies are
handed over as ``FeedParser`` would hand them. A leaf bigger than ``SMALL_PAYLOAD`` keeps
only a `Span` (start and end offsets) as its payload, read on demand in chunks.

tests/mime/test_split.py holds it to ``FeedParser``'s tree (same parts, same headers, same
payloads) on the shared corpus and on Hypothesis-generated messages.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import errors
from email.feedparser import FeedParser
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from mmap import mmap

Buffer = bytes | mmap

SMALL_PAYLOAD = 64 * 1024  # leaves up to this size get their payload as str, like FeedParser's
MAX_NESTING = 100  # deeper than this raises TooDeep (the caller reads the body as text)
MAX_ENTITIES = 10_000  # more than this raises TooManyParts (the body is read as text too)
MAX_PART_HEADER = 1024 * 1024  # a part's header block read as headers, at most
_CHUNK = 1024 * 1024

_EOL = re.compile(rb"\r\n|\r|\n")
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")  # FeedParser's headerRE
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+:")  # headerRE's header line, a name
_LINE_ENDS = b"\r\n"
_PUSHED_BACK = "_tocsin_pushed_back"


class TooDeep(Exception):
    """The MIME tree nests deeper than ``MAX_NESTING`` levels."""


class TooManyParts(TooDeep):
    """The MIME tree has more than ``MAX_ENTITIES`` entities: past that, parsing every
    part's header block (~55 µs each) would let an attacker buy seconds of CPU per MB."""


@dataclass(frozen=True, slots=True)
class Span:
    """A leaf's payload left in the buffer: bytes ``start``..``end`` of ``buffer``."""

    buffer: Buffer
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def chunks(self, cut_at_lines: bool = False) -> Iterator[bytes]:
        """The payload in pieces of about 1 MiB (each ending at a line end if asked)."""
        pos = self.start
        while pos < self.end:
            stop = min(pos + _CHUNK, self.end)
            if cut_at_lines and stop < self.end:
                newline = self.buffer.rfind(b"\n", pos, stop)
                stop = newline + 1 if newline >= 0 else stop
            yield self.buffer[pos:stop]
            pos = stop

    def count(self, chars: bytes) -> int:
        """How many of the payload's bytes are among ``chars``."""
        # one deleting translate a chunk: five bytes.count passes over a 200 KB base64
        # attachment cost 1.4 ms, this 0.24 ms
        return sum(len(chunk) - len(chunk.translate(None, chars)) for chunk in self.chunks())

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes, cut back to the last line end when there is one."""
        if size >= len(self):
            return self.buffer[self.start : self.end]
        newline = self.buffer.rfind(b"\n", self.start, self.start + size)
        return self.buffer[self.start : newline + 1 if newline >= 0 else self.start + size]

    def decoded_size(self, cte: str | None) -> int:
        """Decoded length for quoted-printable (decoded a chunk of lines at a time) and
        uuencode (each line's length character); the encoded length for anything else
        (7bit, 8bit, binary, unknown), as the stdlib's decoding returns those as they are."""
        if cte == "quoted-printable":
            return sum(len(binascii.a2b_qp(chunk)) for chunk in self.chunks(cut_at_lines=True))
        if cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
            return _uu_size(self.chunks(cut_at_lines=True))
        return len(self)


def _uu_size(chunks: Iterator[bytes]) -> int:
    """Bytes a uuencoded payload decodes to: the sum of its lines' length characters
    between ``begin`` and ``end`` (what ``email``'s uudecoding yields for valid input)."""
    size, started = 0, False
    for chunk in chunks:
        for line in chunk.splitlines():
            if not started:
                started = line.startswith(b"begin ")
            elif line.strip() == b"end":
                return size
            elif line:
                size += (line[0] - 32) & 63
    return size


def split_tree(buffer: Buffer) -> Message:
    """The stdlib ``Message`` tree of the message in ``buffer`` (compat32, as FeedParser
    builds it), leaves bigger than ``SMALL_PAYLOAD`` holding a `Span`. Raises `TooDeep`
    (or its `TooManyParts`)."""
    root, _ = _Splitter(buffer).entity(0, len(buffer), 0)
    if root.get_content_maintype() == "multipart" and not isinstance(_payload(root), list):
        root.policy.handle_defect(root, errors.MultipartInvariantViolationDefect())  # as close()
    return root


def plain_header_block(text: str) -> Message | None:
    """The ``Message`` that ``HeaderParser(policy=compat32).parsestr(text)`` makes of a
    plain header block, or None when ``text`` is not one.

    Plain: every line ends alike (all CRLF or all LF), the last line is the empty
    separator, the first is no continuation and every other line is a continuation or a
    header (a name of FeedParser's characters, then ":"), none starting with "From ". Anything
    else (a defect to record, a line pushed back to the body) goes to the stdlib parser.
    Why by hand: FeedParser runs its generator machinery line by line, ~55 µs a part's
    header block, for what is here one split and the policy's own ``header_source_parse``
    per header; tests/mime/test_split.py holds both to the same result."""
    if text.endswith("\r\n"):
        eol = "\r\n"
        ends = text.count("\n")
        if text.count("\r") != ends or text.count(eol) != ends:
            return None
    elif text.endswith("\n") and "\r" not in text:
        eol = "\n"
    else:
        return None
    lines = text.split(eol)  # [..., "", ""]: the separator line, then what follows it
    if len(lines) < 2 or lines[-2] or lines[-1]:
        return None
    msg = Message(policy=compat32)
    msg.set_payload("")  # as HeaderParser leaves it: what followed the block (nothing)
    group: list[str] = []
    for line in lines[:-2]:
        if line[:1] in (" ", "\t"):
            if not group:
                return None  # a first line that continues nothing: a defect
            group.append(line + eol)
            continue
        if line.startswith("From ") or not _FIELD_NAME.match(line):
            return None  # an envelope line, no header name, or no header: the stdlib's
        if group:
            msg.set_raw(*compat32.header_source_parse(group))
        group = [line + eol]
    if group:
        msg.set_raw(*compat32.header_source_parse(group))
    return msg


def header_message(text: str) -> Message:
    """``HeaderParser(policy=compat32).parsestr(text)``'s headers (its payload aside), read
    by :func:`plain_header_block` when the block is plain."""
    plain = plain_header_block(text)
    return plain if plain is not None else HeaderParser(policy=compat32).parsestr(text)


class _Splitter:
    def __init__(self, buffer: Buffer) -> None:
        self.buf = buffer
        self.entities = 0

    def entity(self, start: int, end: int, depth: int) -> tuple[Message, Message]:
        """One entity in ``start``..``end``; also the entity FeedParser would call ``_last``
        afterwards (whose payload loses one line end before a boundary)."""
        if depth > MAX_NESTING:
            raise TooDeep(f"MIME nesting deeper than {MAX_NESTING} levels")
        self.entities += 1
        if self.entities > MAX_ENTITIES:
            raise TooManyParts(f"more than {MAX_ENTITIES} MIME parts")
        msg, body = self.headers(start, end)
        if msg.get_content_maintype() == "message":
            vars(msg).pop(_PUSHED_BACK, None)  # the inner message's unixfrom: no matter
        ctype = msg.get_content_type()
        if ctype == "message/delivery-status":
            return self.delivery_status(msg, start, body, end)
        if msg.get_content_maintype() == "message":
            child, last = self.entity(body, end, depth + 1)
            _put(msg, [child])
            return msg, last
        if msg.get_content_maintype() == "multipart":
            self.multipart(msg, body, end, depth)
            return msg, msg
        self.leaf(msg, body, end)
        return msg, msg

    def headers(self, start: int, end: int) -> tuple[Message, int]:
        """The header block at ``start`` parsed by the stdlib, and where the body starts."""
        pos = start
        limit = min(end, start + MAX_PART_HEADER)
        while pos < limit and _HEADER_LINE.match(self.buf, pos, end):
            pos = self.line_end(pos, end)
        fed_end = self.line_end(pos, end) if pos < end else end  # the separator or first body line
        text = self.buf[start:fed_end].decode("ascii", "surrogateescape")
        msg = plain_header_block(text)
        if msg is None:  # anything unusual: the stdlib's reading, defects and all
            msg = HeaderParser(policy=compat32).parsestr(text, headersonly=True)
        rest = vars(msg).get("_payload")
        rest = rest if isinstance(rest, str) else ""
        msg.set_payload("")
        if rest and pos < end and _EOL.match(self.buf, pos, end):
            # FeedParser read a last header line "From ..." as the body's first line, after
            # the empty line it had consumed: the body is that line, then what follows.
            vars(msg)[_PUSHED_BACK] = (rest, pos - len(rest))
            return msg, fed_end
        return msg, fed_end - len(rest)

    def line_end(self, pos: int, end: int) -> int:
        found = _EOL.search(self.buf, pos, end)
        return found.end() if found is not None else end

    def leaf(self, msg: Message, start: int, end: int) -> None:
        pushed = vars(msg).pop(_PUSHED_BACK, None)
        if pushed is None:
            _put(msg, Span(self.buf, start, end))
        elif len(pushed[0]) + end - start <= SMALL_PAYLOAD:  # exactly FeedParser's payload
            _put(msg, pushed[0] + self.buf[start:end].decode("ascii", "surrogateescape"))
        else:  # a big body: from the "From " line on (with the empty line, a small deviation)
            _put(msg, Span(self.buf, pushed[1], end))

    def delivery_status(
        self, msg: Message, start: int, body: int, end: int
    ) -> tuple[Message, Message]:
        if end - start > SMALL_PAYLOAD:  # not worth a parser of its own: a leaf
            self.leaf(msg, body, end)
            return msg, msg
        parser = FeedParser(policy=compat32)
        parser.feed(self.buf[start:end].decode("ascii", "surrogateescape"))
        parsed = parser.close()
        blocks = parsed.get_payload()
        last = blocks[-1] if isinstance(blocks, list) and blocks else parsed
        return parsed, last if isinstance(last, Message) else parsed

    def multipart(self, msg: Message, start: int, end: int, depth: int) -> None:
        boundary = msg.get_boundary()
        if boundary is None:
            msg.policy.handle_defect(msg, errors.NoBoundaryInMultipartDefect())
            self.leaf(msg, start, end)
            return
        cte = str(msg.get("content-transfer-encoding", "8bit")).lower()
        if cte not in ("7bit", "8bit", "binary"):
            msg.policy.handle_defect(msg, errors.InvalidMultipartContentTransferEncodingDefect())
        try:
            separator = b"--" + boundary.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:  # never equal to a line of bytes: no boundary line
            separator = b""
        lines = _Boundaries(self.buf, separator, end)
        first = lines.find(start) if separator else None
        if first is None or first.close:
            msg.policy.handle_defect(msg, errors.StartBoundaryNotFoundDefect())
            self.leaf(msg, start, first.start if first is not None else end)
            msg.epilogue = ""
            return
        vars(msg).pop(_PUSHED_BACK, None)  # a preamble line: no matter
        children: list[Message] = []
        line: _Line | None = first
        while line is not None and not line.close:
            pos = line.end
            while (again := lines.at(pos)) is not None:  # repeated boundary lines: one
                pos = again.end
            line = lines.find(pos)
            stop = line.start if line is not None else end
            child, last = self.entity(pos, stop, depth + 1)
            _drop_final_line_end(last)
            children.append(child)
        _put(msg, children)
        if line is None:
            msg.policy.handle_defect(msg, errors.CloseBoundaryNotFoundDefect())


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int
    close: bool


class _Boundaries:
    """Finds the lines FeedParser's ``boundaryre`` matches: the separator, ``--`` for the
    close, blanks, a line end (or the end of the data), and nothing else on the line."""

    def __init__(self, buffer: Buffer, separator: bytes, end: int) -> None:
        self.buf = buffer
        self.end = end
        self.sep = separator
        self.rest_re = re.compile(rb"(--)?[ \t]*(\r\n|\r|\n|$)")

    def find(self, pos: int) -> _Line | None:
        """The first boundary line starting at or after ``pos`` (a line start)."""
        while pos < self.end:
            line = self.at(pos)
            if line is not None:
                return line
            pos = self._next_at_line_start(pos + 1)
            if pos < 0:
                return None
        return None

    def _next_at_line_start(self, start: int) -> int:
        """The next separator at a line start from ``start`` (> 0), or -1. ``find`` scans
        in C; a regex led by a look-behind is tried at every byte (50x slower on a
        200 kB attachment)."""
        while True:
            found = self.buf.find(self.sep, start, self.end)
            if found < 0 or self.buf[found - 1] in _LINE_ENDS:
                return found
            start = found + 1

    def at(self, pos: int) -> _Line | None:
        """The boundary line starting exactly at ``pos``, if it is one."""
        after = pos + len(self.sep)
        if after > self.end or self.buf[pos:after] != self.sep:
            return None
        rest = self.rest_re.match(self.buf, after, self.end)
        if rest is None:
            return None
        return _Line(pos, rest.end(), rest.group(1) is not None)


def _drop_final_line_end(last: Message) -> None:
    """RFC 2046: the line end before a boundary belongs to the boundary (FeedParser strips
    it from the payload of the entity it parsed last, unless that one is a multipart)."""
    if last.get_content_maintype() == "multipart":  # its epilogue loses it instead
        return
    payload = _payload(last)
    if isinstance(payload, Span):
        if payload.buffer[payload.end - 2 : payload.end] == b"\r\n" and len(payload) >= 2:
            _put(last, Span(payload.buffer, payload.start, payload.end - 2))
        elif len(payload) >= 1 and payload.buffer[payload.end - 1 : payload.end] in (b"\r", b"\n"):
            _put(last, Span(payload.buffer, payload.start, payload.end - 1))
    elif isinstance(payload, str) and payload.endswith(("\r", "\n")):
        last.set_payload(payload[:-2] if payload.endswith("\r\n") else payload[:-1])


def materialise_small(root: Message, *, keep_unencoded: bool = False) -> None:
    """Give every leaf up to ``SMALL_PAYLOAD`` bytes its payload as ``str``, as FeedParser
    does; bigger leaves keep their `Span`.

    ``keep_unencoded``: a leaf that no transfer encoding changes (`unencoded`) keeps its
    `Span` too, for a reader of its bytes (``milter.mime.parse``): its ``str`` would be
    the bytes decoded with surrogates for every 8-bit byte, which
    ``get_payload(decode=True)`` encodes back to the same bytes — two passes through the
    codecs' error handler, called for each run of 8-bit bytes (~0.4 ms for a 50 KB UTF-8
    HTML part), for nothing."""
    stack = [root]
    while stack:
        part = stack.pop()
        payload = _payload(part)
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
        elif isinstance(payload, Span) and len(payload) <= SMALL_PAYLOAD:
            if keep_unencoded and unencoded(transfer_encoding(part)):
                continue
            text = payload.buffer[payload.start : payload.end]
            part.set_payload(text.decode("ascii", "surrogateescape"))


def transfer_encoding(part: Message) -> str | None:
    """The part's Content-Transfer-Encoding, stripped and lower-cased (None without one)."""
    value = part.get("Content-Transfer-Encoding")
    return str(value).strip().lower() if value is not None else None


def unencoded(cte: str | None) -> bool:
    """True for a transfer encoding (`transfer_encoding`) that leaves the bytes as they are
    (none, 7bit, 8bit, binary): ``get_payload(decode=True)`` decodes only base64,
    quoted-printable and uuencode, and for anything else gives the bytes as parsed."""
    return cte in (None, "7bit", "8bit", "binary")


def _payload(msg: Message) -> object:
    """``msg``'s payload as stored (``get_payload`` would decode a ``str`` with surrogates)."""
    return vars(msg).get("_payload")


def _put(msg: Message, payload: object) -> None:
    """Store ``payload`` as ``msg``'s, unchecked (a `Span` or a list of parts), as
    FeedParser itself does (``attach``/``_payload``)."""
    vars(msg)["_payload"] = payload

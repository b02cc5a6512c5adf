"""Parse raw message bytes once into a ``MimeView`` (headers, parts, text, HTML, defects).

Built on the standard library's parser (compat32 policy: the fastest, and lenient —
malformed MIME becomes recorded defects, never an exception). A message the front-end
spooled to disk (`milter.mime.spool`) is split in place by `milter.mime.split` instead,
which gives the same tree without holding the attachments: only text and HTML parts are
read, up to the text limit. Every limit is explicit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32

from milter.mime.headers import (
    Address,
    decode_words,
    parse_addresses,
    parse_header_block,
)
from milter.mime.salvage import encoded_parts
from milter.mime.split import (
    SMALL_PAYLOAD,
    Span,
    TooDeep,
    TooManyParts,
    materialise_small,
    split_tree,
    transfer_encoding,
    unencoded,
)
from milter.mime.spool import RawMessage
from milter.model.budget import spent, work_budget
from milter.model.limits import LimitHit
from milter.text.html_view import view as html_view


@dataclass(frozen=True, slots=True)
class MimeLimits:
    """Bounds on what one message may cost to parse."""

    max_parts: int = 500
    max_text_chars: int = 1_000_000  # per decoded text or HTML part
    max_depth: int = 20  # deeper parts are still read (up to max_parts); the hit is recorded
    max_headers: int = 1000  # more header fields are still read; the hit is recorded
    # Reading the visible text of the HTML parts stops after this long (the rest of the
    # part is not read; the hit "work" is recorded): hostile markup costs CPU before the
    # checks' own budget starts.
    text_work_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class MimePart:
    """One leaf part: where it sits in the tree and what it is."""

    path: str  # "1", "1.2"… as IMAP numbers parts
    content_type: str
    charset: str | None
    transfer_encoding: str | None
    filename: str | None
    size: int  # decoded bytes


@dataclass(frozen=True, slots=True)
class MimeView:
    """Everything checks read about a message; built once per scan, never mutated.

    ``source`` is the message as received (in memory or spooled), for checks that read
    bytes (DKIM, ARC) and actions that rewrite the message. Text values are already
    decoded to ``str``.
    """

    source: RawMessage
    headers: tuple[tuple[str, str], ...]
    parts: tuple[MimePart, ...]
    texts: tuple[str, ...]
    htmls: tuple[str, ...]
    html_texts: tuple[str, ...]
    defects: tuple[str, ...]
    subject: str
    from_addresses: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    sender: tuple[Address, ...]
    limits_hit: tuple[LimitHit, ...] = ()
    all_text: str = field(init=False, repr=False, compare=False)
    """Subject, text parts and visible HTML text joined, for phrase checks: made once (five
    checks read it, and each new copy of a 50 KB body was hashed again as a cache key)."""

    def __post_init__(self) -> None:
        joined = "\n".join((self.subject, *self.texts, *self.html_texts))
        object.__setattr__(self, "all_text", joined)

    @property
    def raw(self) -> bytes:
        """The whole message in memory (read from the spool, a copy, when spooled)."""
        return self.source.to_bytes()

    @property
    def header_block(self) -> bytes:
        """The raw header block, ending with its empty line."""
        return self.source.header_block

    @property
    def body(self) -> bytes:
        """The raw body (read from the spool, a copy, when spooled)."""
        return self.source.body()

    def header_values(self, name: str) -> tuple[str, ...]:
        """All raw values of header ``name`` (case-insensitive), in order."""
        lname = name.lower()
        return tuple(v for n, v in self.headers if n.lower() == lname)

    def header(self, name: str) -> str | None:
        """First raw value of header ``name``, or None."""
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def from_address(self) -> Address | None:
        """The single RFC5322.From mailbox, or None if absent or multiple."""
        return self.from_addresses[0] if len(self.from_addresses) == 1 else None


def _visible_texts(walker: _Walker) -> tuple[str, ...]:
    """The visible text of each HTML part, read under a work budget of its own: past it,
    what each part's reading reached (the hit "work" is recorded)."""
    seconds = walker.limits.text_work_seconds
    texts = []
    with work_budget(seconds):
        for html in walker.htmls:
            seen = html_view(html, stop=spent)
            texts.append(seen.text)
            if not seen.complete:
                detail = f"visible text read for {seconds:g} s of work, the rest not read"
                walker.hit("work", "HTML part", detail)
    return tuple(texts)


def parse_message(raw: bytes | RawMessage, limits: MimeLimits = MimeLimits()) -> MimeView:
    """Parse ``raw`` into a MimeView. Never raises on malformed input."""
    source = raw if isinstance(raw, RawMessage) else RawMessage.from_bytes(raw)
    header_block = source.header_block
    all_headers = parse_header_block(header_block)
    walker = _Walker(limits)
    headers = all_headers  # every field is read (splitting is linear); the hit is recorded
    if len(all_headers) > limits.max_headers:
        detail = f"{len(all_headers)} fields, over the limit of {limits.max_headers}"
        walker.hit("headers", "header block", detail)
    if source.truncated:
        detail = f"{source.received} bytes received, the first {source.size} scanned"
        walker.hit("size", "message", detail)
    _walk_split(source, walker)
    html_texts = _visible_texts(walker)
    defects = _header_defects(all_headers, header_block) + tuple(walker.defects)
    return MimeView(
        source=source,
        headers=headers,
        parts=tuple(walker.parts),
        texts=tuple(walker.texts),
        htmls=tuple(walker.htmls),
        html_texts=html_texts,
        defects=defects,
        subject=decode_words(_first(all_headers, "subject")),
        from_addresses=_addresses(all_headers, "from"),
        reply_to=_addresses(all_headers, "reply-to"),
        sender=_addresses(all_headers, "sender"),
        limits_hit=tuple(walker.limits_hit),
    )


def _walk_split(source: RawMessage, walker: _Walker) -> None:
    """Split the message in place (a spooled one's pages mapped, not copied) and walk it.

    The boundary splitter (``milter.mime.split``) builds the tree the stdlib's FeedParser
    builds (tests/mime/test_split.py) but finds boundaries with ``bytes.find`` and leaves
    non-text payloads as offsets, where FeedParser reads every line in Python: 3–28 %
    less parse CPU per corpus message kind, small messages included (#15)."""
    with source.buffer() as buffer:
        try:
            tree = split_tree(buffer)
        except TooManyParts as exc:
            _read_as_text(source, walker, "parts", str(exc))
            return
        except TooDeep as exc:
            _too_deep(source, walker, str(exc))
            return
        materialise_small(tree, keep_unencoded=True)  # their bytes are read as they are
        walker.walk(tree)


def _too_deep(source: RawMessage, walker: _Walker, why: str) -> None:
    _read_as_text(source, walker, "depth", why)


def _read_as_text(source: RawMessage, walker: _Walker, limit: str, why: str) -> None:
    """The tree cannot be built within its limits: the body (up to four times the text
    limit) is read as text and as HTML, so the links in it are still seen."""
    walker.hit(limit, "1", f"{why}; body read as text")
    cap = 4 * walker.limits.max_text_chars
    walker.raw_body(source.read(source.body_offset, source.body_offset + cap))


BIG_PART = 64 * 1024  # encoded size from which a non-text base64 part is measured, not decoded
_B64_NOT_DATA = b"\r\n \t="
_B64_DATA_ONLY = dict.fromkeys(_B64_NOT_DATA)  # str.translate table deleting them


def _first(headers: tuple[tuple[str, str], ...], name: str) -> str:
    return next((v for n, v in headers if n.lower() == name), "")


def _addresses(headers: tuple[tuple[str, str], ...], name: str) -> tuple[Address, ...]:
    values = [v for n, v in headers if n.lower() == name]
    return tuple(a for v in values for a in parse_addresses(v))


def _header_defects(headers: tuple[tuple[str, str], ...], block: bytes) -> tuple[str, ...]:
    defects: list[str] = []
    froms = [v for n, v in headers if n.lower() == "from"]
    if not headers:
        defects.append("no header block")
    if len(froms) != 1:
        defects.append(f"{len(froms)} From headers (RFC 5322 requires exactly one)")
    try:
        block.decode("utf-8")  # RFC 6532 allows UTF-8 header fields; other 8-bit is broken
    except UnicodeDecodeError:
        defects.append("header block has bytes that are not UTF-8")
    return tuple(defects)


class _Walker:
    """Depth-first walk of the MIME tree collecting leaves, text and defects, bounded.

    Iterative (no Python recursion per level): parts below ``max_depth`` are still read,
    so a lure cannot hide its links under 21 levels of multipart. Past ``max_parts`` the
    parts are no longer listed, but text and HTML parts are still read, up to
    ``max_text_chars`` characters in all (each part counting at least one), so a lure
    cannot hide its links behind 500 filler parts either. Every limit reached is
    recorded in ``limits_hit``.
    """

    def __init__(self, limits: MimeLimits) -> None:
        self.limits = limits
        self.parts: list[MimePart] = []
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.defects: list[str] = []
        self.limits_hit: list[LimitHit] = []
        self._past_cap_chars = 0  # text read from parts past max_parts

    def hit(self, limit: str, where: str, detail: str) -> None:
        """Record a limit reached (once per limit) and say so in the defects."""
        if all(h.limit != limit for h in self.limits_hit):
            self.limits_hit.append(LimitHit(limit, where, detail))
            self.defects.append(f"{where}: limit {limit}: {detail}")

    def walk(self, root: Message) -> None:
        stack: list[tuple[Message, str, int]] = [(root, "1", 0)]
        while stack:
            part, path, depth = stack.pop()
            self.defects.extend(f"{path}: {type(d).__name__}" for d in part.defects[:20])
            if depth > self.limits.max_depth:
                detail = f"nested deeper than {self.limits.max_depth} levels, still read"
                self.hit("depth", path, detail)
            if not part.is_multipart():
                if len(self.parts) < self.limits.max_parts:
                    self._leaf(part, path)
                    continue
                detail = f"more than {self.limits.max_parts} parts; their text still read"
                self.hit("parts", path, detail)
                if not self._past_cap(part, path):
                    return
                continue
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(
                    (child, f"{path}.{index}" if depth else str(index), depth + 1)
                    for index, child in reversed(list(enumerate(children, 1)))
                )

    def raw_body(self, body: bytes) -> None:
        """Fallback when the tree cannot be built: the whole body as text and as HTML, and
        each base64 or quoted-printable part in it decoded (``milter.mime.salvage``)."""
        text = body.decode("utf-8", "replace")
        self._text("1", "text/plain", text)
        if "<" in text:
            self._text("1", "text/html", text)
        for cte, payload in encoded_parts(body, self.limits.max_text_chars):
            decoded = transfer_decoded(payload, cte).decode("utf-8", "replace")
            self._text("1", "text/html" if "<" in decoded else "text/plain", decoded)

    def _past_cap(self, part: Message, path: str) -> bool:
        """Read a text or HTML leaf past ``max_parts`` (not listed as a part); False once
        their text budget is spent, which ends the walk."""
        budget = self.limits.max_text_chars - self._past_cap_chars
        if budget <= 0:
            self.hit("text", path, "text past the part limit cut")
            return False
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or _is_attachment(part):
            self._past_cap_chars += 1
            return True
        size, payload = _text_payload(part, cte := _cte(part), budget)
        cut = _cut(size, payload, cte)
        charset = part.get_content_charset()
        text = _decode_text(payload, charset, self.defects, path, cut=cut)[:budget]
        self._past_cap_chars += len(text) + 1
        (self.htmls if ctype == "text/html" else self.texts).append(text)
        return True

    def _leaf(self, part: Message, path: str) -> None:
        ctype = part.get_content_type()
        charset = part.get_content_charset()
        cte = _cte(part)
        is_text = ctype in ("text/plain", "text/html") and not _is_attachment(part)
        payload = b""
        if is_text:
            size, payload = _text_payload(part, cte, self.limits.max_text_chars)
        else:
            size = _base64_size(part, cte)
            if size is None:
                size, payload = _other_size(part, cte)
        self.parts.append(
            MimePart(
                path=path,
                content_type=ctype,
                charset=charset,
                transfer_encoding=cte,
                filename=_filename(part),
                size=len(payload) if size is None else size,
            )
        )
        if is_text:
            cut = _cut(size, payload, cte)
            self._text(path, ctype, _decode_text(payload, charset, self.defects, path, cut=cut))

    def _text(self, path: str, ctype: str, text: str) -> None:
        if len(text) > self.limits.max_text_chars:
            self.hit("text", path, f"text cut at {self.limits.max_text_chars} characters")
            text = text[: self.limits.max_text_chars]
        (self.htmls if ctype == "text/html" else self.texts).append(text)


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def transfer_decoded(payload: bytes, cte: str | None) -> bytes:
    """``payload`` (a body, bytes) decoded from its Content-Transfer-Encoding ``cte`` by
    the stdlib, as ``get_payload(decode=True)`` of the entity would give it (without
    feeding the body to a parser line by line)."""
    part = Message(policy=compat32)
    if cte is not None:
        part["Content-Transfer-Encoding"] = cte
    part.set_payload(payload.decode("ascii", "surrogateescape"))
    return _payload_bytes(part)


def _other_size(part: Message, cte: str | None) -> tuple[int | None, bytes]:
    """(size, payload) of a leaf that is not text: a spooled big one is measured in place."""
    payload = part.get_payload()
    if isinstance(payload, Span):
        return payload.decoded_size(cte), b""
    return None, _payload_bytes(part)


def _text_payload(part: Message, cte: str | None, max_chars: int) -> tuple[int | None, bytes]:
    """(size, bytes to decode) of a text part. An unencoded payload longer than
    ``max_chars`` can hold (4 bytes a character) is cut before it is copied and decoded:
    its text is truncated to ``max_chars`` anyway; an encoded one left in a spool file is
    decoded from its first ``6 * max_chars`` bytes. Size None: the length of the bytes.

    A small unencoded leaf keeps its `Span` (``materialise_small``): its bytes are those
    its ``str`` gave, cut as that was, at ``4 * max_chars`` (the cut at a line end is for
    big ones). A ``str`` payload is cut as bytes: the ``str`` ``get_payload()`` gives has
    its 8-bit bytes replaced (encoding it back raised UnicodeEncodeError)."""
    payload = part.get_payload()
    if isinstance(payload, Span):
        if unencoded(cte):
            if len(payload) <= SMALL_PAYLOAD:  # kept by materialise_small
                end = payload.start + min(len(payload), 4 * max_chars)
                return len(payload), payload.buffer[payload.start : end]
            return len(payload), payload.head(4 * max_chars)
        size = _base64_size(part, cte)
        if len(payload) <= 6 * max_chars:
            return size, transfer_decoded(payload.head(len(payload)), cte)
        return size or len(payload), transfer_decoded(payload.head(6 * max_chars), cte)
    if not unencoded(cte) or not isinstance(payload, str) or len(payload) <= 4 * max_chars:
        return None, _payload_bytes(part)
    # (``get_payload()`` gives 8-bit bytes back decoded with U+FFFD for each: the str
    # cannot be cut and encoded back; its bytes are)
    return len(payload), _payload_bytes(part)[: 4 * max_chars]


def _base64_size(part: Message, cte: str | None) -> int | None:
    """Decoded size of a big base64 payload from its length (exact for well-formed
    base64), so an attachment is never decoded just to be measured; None otherwise."""
    payload = part.get_payload()
    if cte != "base64" or len(payload) < BIG_PART:
        return None
    if isinstance(payload, Span):
        return (len(payload) - payload.count(_B64_NOT_DATA)) * 3 // 4
    if not isinstance(payload, str):
        return None
    data = len(payload.translate(_B64_DATA_ONLY))  # (one pass: str.count per character cost more)
    return data * 3 // 4


def _cte(part: Message) -> str | None:
    return transfer_encoding(part)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError):  # broken RFC 2231 parameters
        return None
    return decode_words(name) if name else None


def _is_attachment(part: Message) -> bool:
    return str(part.get("Content-Disposition", "")).lower().startswith("attachment")


def _cut(size: int | None, payload: bytes, cte: str | None) -> bool:
    """True for an unencoded text payload `_text_payload` cut (its first bytes only)."""
    return unencoded(cte) and size is not None and len(payload) < size


def _decoded(payload: bytes, encoding: str, cut: bool) -> str:
    """``payload`` decoded (strict); a ``cut`` one without the character its end splits
    (the cut at 4 x max_chars bytes falls anywhere in a multi-byte sequence)."""
    try:
        return payload.decode(encoding)
    except UnicodeDecodeError as exc:
        if not cut or exc.end != len(payload) or exc.start < len(payload) - 3:
            raise
        start = exc.start
    return payload[:start].decode(encoding)


def _decode_text(
    payload: bytes, charset: str | None, defects: list[str], path: str, *, cut: bool = False
) -> str:
    try:
        return _decoded(payload, charset or "utf-8", cut)
    except UnicodeDecodeError:
        if charset:
            defects.append(f"{path}: bytes invalid in declared charset {charset}")
    except (LookupError, ValueError):  # unknown, or a name no codec takes (a NUL in it)
        defects.append(f"{path}: unknown charset {charset!r}")
    # Undeclared or wrong charset: windows-1252 is what undeclared 8-bit mail usually is.
    try:
        return _decoded(payload, "utf-8", cut)
    except UnicodeDecodeError:
        return payload.decode("cp1252", "replace")

"""Hostile message shapes (#17), shared by the regression tests and scripts/adversarial.py.

Each builder returns raw bytes of one message. Lures impersonate ameli from a lookalike
host, so a scan that reads them must quarantine them.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

LURE_HOST = "ameli-remboursement.fr"
LURE_URL = f"https://{LURE_HOST}/connexion"
_FROM = b"From: Assurance Maladie <info@ameli-remboursement.fr>\r\n"
_BASE = b"To: assure@example.net\r\nSubject: Votre remboursement\r\nMIME-Version: 1.0\r\n"
_TEXT = "Votre remboursement ameli est en attente. Connectez-vous"


def lure_html(extra: str = "") -> bytes:
    """An HTML lure whose link to the lookalike host comes first, then ``extra``."""
    html = f'<p>{_TEXT} : <a href="{LURE_URL}">espace assuré</a></p>{extra}'
    return (
        _FROM
        + _BASE
        + b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + html.encode("utf-8", "surrogateescape")
        + b"\r\n"
    )


def lure_link_only(html: str) -> bytes:
    """A message from an unrelated sender whose only signal is the link in ``html``."""
    return (
        b"From: Service <contact@example.org>\r\n"
        + _BASE
        + b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + html.encode("utf-8")
        + b"\r\n"
    )


def never_closed(unit: str, size: int = 1_200_000) -> bytes:
    """The lure followed by ``size`` characters of a never-closed ``unit`` (``<a``...)."""
    return lure_html(unit * (size // len(unit)))


def html_floods(count: int, size: int = 1_000_000) -> bytes:
    """A multipart of ``count`` HTML parts, each ``size`` bytes of bogus comments (``</1>``).

    The HTML view reads such a run as one compiled match (since 8b68144: ~3 ms a part), but
    the links check streams the tokens of parts over 256 KB, and there each ``</1>`` is a
    token only the tokenizer's state machine reads (one Python step a token, ~0.6 s of CPU a
    part), on the event loop under the scan's work budget: 25 parts hold a worker's loop for
    seconds (the worker watchdog's case, tests/hostile/test_worker_stall.py). (A never-closed
    ``<a href=`` flood no longer does: a tag cut by the end is dropped in one compiled scan.)
    """
    flood = b"</1>" * (size // 4)
    part = b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + flood + b"\r\n"
    head = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    return _FROM + _BASE + head + part * count + b"--b--\r\n"


def nested(depth: int, leaf: bytes | None = None, *, lure_from: bool = True) -> bytes:
    """A multipart nested ``depth`` levels, the lure's HTML at the bottom."""
    body = leaf or (
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + f'<p>{_TEXT} : <a href="{LURE_URL}">ici</a></p>\r\n'.encode()
    )
    for level in range(depth, 0, -1):
        boundary = b"b%d" % level
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\r\n\r\n--'
            + boundary
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    sender = _FROM if lure_from else b"From: Service <contact@example.org>\r\n"
    return sender + _BASE + body


def header_flood(count: int, *, before_from: bool = False) -> bytes:
    """The lure padded with ``count`` extra header fields (after, or before, From)."""
    padding = b"".join(b"X-Pad-%d: %d\r\n" % (i, i) for i in range(count))
    message = lure_html()
    if before_from:
        return padding + message
    head, _, body = message.partition(b"\r\n\r\n")
    return head + b"\r\n" + padding + b"\r\n" + body


def long_header_line(size: int = 5_000_000) -> bytes:
    """The lure with one header line of ``size`` bytes."""
    return b"X-Long: " + b"a" * size + b"\r\n" + lure_html()


def invalid_utf8() -> bytes:
    """Bytes that are not UTF-8 in the Subject, the From display name and the body."""
    return (
        b"From: Assurance Maladie \xff\xfe <info@ameli-remboursement.fr>\r\n"
        b"To: assure@example.net\r\nSubject: Rembours\xe9 \xff\xfe\xc3 ameli\r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"Votre remboursement ameli \xe9\xff\xc3( : " + LURE_URL.encode() + b"\r\n"
    )


def marked_sections() -> bytes:
    """Real-world HTML with ``<![end if]>``-style marked sections (stdlib html.parser raised)."""
    return lure_link_only(
        "<html><body><![if !supportLists]><span>1.</span><![end if]>"
        "<![if !vml]><img src=x><![endif]><p>Voir "
        f'<a href="{LURE_URL}">votre espace ameli</a></p></body></html>'
    )


def many_parts(count: int, encoding: str | None = None) -> bytes:
    """A flat multipart/mixed of ``count`` tiny text parts, then the lure's HTML part
    (base64 or quoted-printable when ``encoding`` says so).

    Past ``MAX_ENTITIES`` (10,000) parts the splitter stops building the tree and the
    body is read as text (``LIMIT_EXCEEDED`` parts), so 200,000 parts cost well under a
    second, not the ~17 s of parsing every part's header block.
    """
    part = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    lure = f'<p>{_TEXT} : <a href="{LURE_URL}">ici</a></p>'.encode()
    leaf = b"--b\r\n" + encoded_html(lure, encoding) + b"\r\n"
    head = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    return _FROM + _BASE + head + part * count + leaf + b"--b--\r\n"


def encoded_html(html: bytes, encoding: str | None) -> bytes:
    """An HTML part's header and body, its body in ``encoding`` (None: 8bit as is)."""
    head = b"Content-Type: text/html; charset=utf-8\r\n"
    if encoding is None:
        return head + b"\r\n" + html
    if encoding == "base64":
        body = base64.encodebytes(html).replace(b"\n", b"\r\n")
    else:  # every byte escaped, soft line breaks: readable only once decoded
        escaped = [b"=%02X" % byte for byte in html]
        body = b"=\r\n".join(b"".join(escaped[i : i + 25]) for i in range(0, len(escaped), 25))
    return head + b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n\r\n" + body


_SHAPES = (
    lambda r: never_closed(r.choice(["<a", "<a href=", "<!--", "<a href='", "<![", "</"])),
    lambda r: nested(r.choice([21, 30, 200, 2000])),
    lambda r: header_flood(r.choice([1001, 5000]), before_from=r.random() < 0.3),
    lambda r: many_parts(r.choice([501, 5_000, 20_000])),
    lambda r: long_header_line(r.choice([100_000, 2_000_000])),
    lambda r: invalid_utf8(),
    lambda r: marked_sections(),
    lambda r: lure_html("".join(r.choice("<>&;\"'=/!-[]") for _ in range(r.randrange(1, 5000)))),
    lambda r: lure_html(
        "".join(f'<a href="https://x{i}.example/">{i}</a>' for i in range(r.randrange(10, 5000)))
    ),
)


def generate(count: int, seed: int = 17) -> Iterator[tuple[str, bytes]]:
    """``count`` adversarial messages (name, bytes), reproducible from ``seed``, built
    one at a time (some are megabytes)."""
    rnd = random.Random(seed)
    for index in range(count):
        shape = rnd.randrange(len(_SHAPES))
        yield f"adv-{index:05d}-shape{shape}", _SHAPES[shape](rnd)

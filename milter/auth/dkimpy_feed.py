"""Hand a message to dkimpy without its whole-message passes, and canonicalise bodies faster.

Two costs of dkimpy showed in the load profile (docs/performance.md), both paid once per
verifier object (one for DKIM, one for ARC) on every message:

- ``dkim.rfc822_parse`` splits the *whole* message into lines with a regular expression
  and joins the body back with CRLF: two full copies and ~7 % of Tocsin's CPU.
  ``split_message`` finds the end of the header block itself, lets dkimpy parse only that
  block, and rewrites the body's line ends only when it has bare LFs. The result is the
  same as ``rfc822_parse``'s (tests/auth/test_dkimpy_feed.py checks it on random input).
- dkimpy's "relaxed" body canonicalisation (RFC 6376 §3.4.4) replaces every run of
  spaces and tabs, *including every single space*, so it rebuilds the body word by word
  (~8 ms for an 80 KB newsletter on the benchmark machine). ``FastRelaxed`` gives the same
  bytes but only touches what changes — runs of two or more blanks, tabs, blanks before a
  line end — and skips a pass when a ``in`` scan (C speed) shows nothing to do. It is
  registered in dkimpy's own table of canonicalisation algorithms
  (``dkim.canonicalization.ALGORITHMS``), which is how dkimpy looks ``c=relaxed`` up; the
  same test compares it with dkimpy's implementation.
"""

from __future__ import annotations

import re
from typing import Any

import dkim
import dkim.canonicalization as canon

__all__ = ["DkimpyMessage", "FastRelaxed", "load_verifier", "prepare", "split_message"]

_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_TRAILING_BLANKS = re.compile(rb"[\t ]+\r\n")
_BLANK_RUNS = re.compile(rb"[\t ]{2,}|\t")

DkimpyMessage = tuple[list[list[bytes]], bytes]
"""dkimpy's view of a message: [[name, value-with-CRLF], ...] and the CRLF body."""


def split_message(message: bytes) -> DkimpyMessage:
    """What ``dkim.rfc822_parse(message)`` returns, without splitting the body into lines.

    Raises ``dkim.MessageFormatError`` exactly when dkimpy would (a bad header line).
    """
    if message.startswith((b"\n", b"\r\n")):  # an empty first line: no headers at all
        headers, body = [], message[1 if message.startswith(b"\n") else 2 :]
    elif (end := _END_OF_HEADERS.search(message)) is None:  # no body: small, dkimpy's way
        return dkim.rfc822_parse(message)  # type: ignore[no-any-return]
    else:  # the leftmost match starts at the last header line's own line end
        headers = dkim.rfc822_parse(message[: end.start()])[0]
        body = message[end.end() :]
    if body.count(b"\n") != body.count(b"\r\n"):
        body = _BARE_LF.sub(b"\r\n", body)
    return headers, body


def prepare(message: bytes) -> DkimpyMessage | bytes:
    """``split_message(message)`` to share between DKIM and ARC, or ``message`` itself when
    dkimpy cannot parse its header (the verifiers then report that as they always did)."""
    try:
        return split_message(message)
    except (dkim.MessageFormatError, IndexError):  # IndexError: dkimpy on a leading fold
        return message


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
    """dkimpy's "relaxed" algorithm with a body canonicalisation that copies less."""

    name = canon.Relaxed.name
    canonicalize_headers = staticmethod(canon.Relaxed.canonicalize_headers)

    @staticmethod
    def canonicalize_body(body: bytes) -> bytes:
        """RFC 6376 §3.4.4: drop blanks before line ends, one space per run, no empty tail."""
        if b" \r\n" in body or b"\t\r\n" in body:
            body = _TRAILING_BLANKS.sub(b"\r\n", body)
        if b"\t" in body or b"  " in body:
            body = _BLANK_RUNS.sub(b" ", body)
        return bytes(canon.correct_empty_body(canon.strip_trailing_lines(body)))


canon.ALGORITHMS[FastRelaxed.name] = FastRelaxed

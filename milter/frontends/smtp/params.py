"""ESMTP parameters and XFORWARD attributes: parsed, checked, passed on. Pure, no I/O.

aiosmtpd refuses every parameter but SIZE, BODY and SMTPUTF8 (answering 555, which
Postfix turns into a permanent rejection) and upper-cases the rest, corrupting the
case-sensitive xtext of ENVID and ORCPT (../shared/docs/milter-postfix.md §3.3). A filter
must carry the DSN parameters (RFC 3461) through unchanged, so the SMTP front-end parses
them here itself, keeping each value exactly as the client sent it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError

MAIL_KEYWORDS = frozenset({"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH"})
RCPT_KEYWORDS = frozenset({"NOTIFY", "ORCPT"})
DSN_KEYWORDS = frozenset({"RET", "ENVID", "NOTIFY", "ORCPT"})
XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
MAX_XFORWARD_VALUE = 255  # Postfix XFORWARD_README
MAX_XFORWARD_LINE = 500  # the whole command stays under SMTP's 512 octets

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})


class ParamError(ValueError):
    """A parameter the filter must refuse; ``reply`` is the SMTP answer."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Params:
    """ESMTP parameters in the order given: (upper-cased keyword, value as sent or None)."""

    items: tuple[tuple[str, str | None], ...] = ()

    def get(self, keyword: str) -> str | None:
        """The value of ``keyword`` ('' for a bare keyword), or None when absent."""
        for key, value in self.items:
            if key == keyword:
                return value if value is not None else ""
        return None

    def __contains__(self, keyword: object) -> bool:
        return any(key == keyword for key, _ in self.items)

    def for_next_hop(self, extensions: Iterable[str]) -> list[str]:
        """The parameters to pass on to a next hop offering ``extensions`` (lower-case).

        DSN parameters go on when the next hop offers DSN (as Postfix does, they are
        dropped otherwise), BODY with 8BITMIME, SMTPUTF8 with SMTPUTF8. SIZE and AUTH
        stay here: the edited message has another size, and AUTH is about our client.
        """
        offered = set(extensions)
        out: list[str] = []
        for key, value in self.items:
            if (
                (key in DSN_KEYWORDS and "dsn" in offered)
                or (key == "BODY" and "8bitmime" in offered)
                or (key == "SMTPUTF8" and "smtputf8" in offered)
            ):
                out.append(key if value is None else f"{key}={value}")
        return out


def parse_params(text: str, allowed: frozenset[str]) -> Params:
    """Parse ``KEY[=VALUE] ...`` after an address; raise ParamError with the reply."""
    items: list[tuple[str, str | None]] = []
    for word in text.split():
        key, eq, value = word.partition("=")
        if not _KEYWORD.fullmatch(key) or (eq and not value):
            raise ParamError("501 5.5.4 Syntax error in parameters")
        key = key.upper()
        if key not in allowed:
            raise ParamError(f"555 5.5.4 {key} parameter not supported")
        if any(k == key for k, _ in items):
            raise ParamError(f"501 5.5.4 {key} given twice")
        items.append((key, value if eq else None))
        _check(key, value if eq else None)
    return Params(tuple(items))


def _check(key: str, value: str | None) -> None:
    if key == "SMTPUTF8" and value is not None:
        raise ParamError("501 5.5.4 SMTPUTF8 takes no value")
    if key in ("SIZE", "BODY", "RET", "ENVID", "NOTIFY", "ORCPT", "AUTH") and value is None:
        raise ParamError(f"501 5.5.4 {key} needs a value")
    if value is None:
        return
    if key == "SIZE" and not (value.isascii() and value.isdigit()):
        raise ParamError("501 5.5.4 SIZE must be a number")
    if key == "BODY" and value.upper() not in ("7BIT", "8BITMIME"):
        raise ParamError("501 5.5.4 BODY must be 7BIT or 8BITMIME")
    if key == "RET" and value.upper() not in ("FULL", "HDRS"):
        raise ParamError("501 5.5.4 RET must be FULL or HDRS")
    if key == "NOTIFY":
        words = {w.upper() for w in value.split(",")}
        if words != {"NEVER"} and not words <= _NOTIFY:
            raise ParamError("501 5.5.4 NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY")
    if key == "ORCPT" and ";" not in value:
        raise ParamError("501 5.5.4 ORCPT must be addr-type;xtext")


def xtext_decode(value: str) -> str:
    """RFC 3461 xtext → text (``+2B`` → ``+``)."""
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def xtext_encode(value: str) -> str:
    """Text → RFC 3461 xtext (``+``, ``=``, controls and non-ASCII as ``+XX``)."""
    return "".join(
        ch if "!" <= ch <= "~" and ch not in "+=" else "".join(f"+{b:02X}" for b in ch.encode())
        for ch in value
    )


def parse_xforward(text: str) -> dict[str, str]:
    """``NAME=… ADDR=…`` → attributes (values still xtext); raise ParamError."""
    attributes: dict[str, str] = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        key = key.upper()
        if not eq or key not in XFORWARD_ATTRIBUTES:
            raise ParamError(f"501 5.5.4 Bad XFORWARD attribute {key or word!r}")
        if len(value) > MAX_XFORWARD_VALUE:
            raise ParamError(f"501 5.5.4 XFORWARD {key} too long")
        attributes[key] = value
    if not attributes:
        raise ParamError("501 5.5.4 Syntax: XFORWARD attribute=value ...")
    return attributes


def xforward_value(attributes: dict[str, str], key: str) -> str | None:
    """The decoded value of ``key``; None when absent or Postfix's [UNAVAILABLE]-style."""
    raw = attributes.get(key)
    if raw is None:
        return None
    value = xtext_decode(raw)
    if value.startswith("[") and value.endswith("]") and value[1:-1].isupper():
        return None
    if key == "ADDR" and value[:5].upper() == "IPV6:":
        value = value[5:]
    return value or None


def xforward_lines(attributes: dict[str, str], offered: Iterable[str]) -> list[str]:
    """The XFORWARD command arguments for a next hop offering ``offered`` attributes,
    each line under the 512-octet command limit."""
    wanted = {a.upper() for a in offered}
    words = [f"{k}={v}" for k, v in attributes.items() if k in wanted]
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= MAX_XFORWARD_LINE:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def parse_address(arg: str) -> tuple[str | None, str]:
    """The address of a MAIL/RCPT argument and the text after it (the parameters);
    ``(None, "")`` when it does not parse.

    The answers of aiosmtpd's ``SMTP._getaddr`` (the same stdlib parsers, angle form or
    bare addr-spec; its optional local-part limit is not used here), without the
    ``typing.Protocol`` class it defines on every call: 40 -> 12 us per address.
    """
    if not arg:
        return "", ""
    parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
    try:
        address, rest = parse(arg)
    except HeaderParseError:
        return None, ""
    return str(address.addr_spec), str(rest)

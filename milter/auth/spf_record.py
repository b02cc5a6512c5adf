"""SPF record syntax and macro expansion (RFC 7208 §4.5, §4.6, §5, §6, §7), pure: no I/O.

``parse_record`` turns a "v=spf1 ..." string into a ``SpfRecord`` or raises
``SpfSyntaxError`` (which the evaluator reports as ``permerror``, §4.6). ``expand`` performs
macro expansion for one ``MacroContext``; the evaluator in ``milter.auth.spf`` does the DNS.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = [
    "DNS_MECHANISMS",
    "IPAddress",
    "MacroContext",
    "Mechanism",
    "SpfRecord",
    "SpfSyntaxError",
    "expand",
    "expand_domain",
    "is_spf_record",
    "parse_record",
    "uses_macro",
    "validate_macro_string",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}  # §4.6.2
#: Terms that cost a DNS query and count against the limit of 10 (§4.6.4).
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)", re.S)  # §4.6.1 / §12 "modifier"
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9_.\-]*)(.*)", re.S)
# dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] (§5.6, no leading zeros)
_DUAL_CIDR = re.compile(r"(.*?)(?:/(0|[1-9][0-9]*))?(?://(0|[1-9][0-9]*))?", re.S)
_MACRO_EXPAND = re.compile(r"%\{([A-Za-z])([0-9]*)([rR]?)([.\-+,/_=]*)\}")  # §7.1
_TOPLABEL = re.compile(  # §4.6.1 toplabel: not all-numeric
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9])"
)
_MACRO_LETTERS = frozenset("slodiphcrtv")
_EXP_ONLY = frozenset("crt")  # §7.3: only allowed in explanation strings


class SpfSyntaxError(ValueError):
    """The record (or a macro string) violates RFC 7208 syntax: ``permerror``."""


RECORD_CACHE_SIZE = 4096  # parsed records kept across messages (bounded: DNS text)


@dataclass(frozen=True, slots=True)
class Mechanism:
    """One directive (§4.6.2, §5): qualifier, name, optional domain-spec and CIDR lengths."""

    qualifier: str  # "+", "-", "~" or "?"
    name: str  # lower-case: all, include, a, mx, ptr, ip4, ip6, exists
    domain_spec: str | None = None
    cidr4: int | None = None
    cidr6: int | None = None
    network: IPNetwork | None = None  # ip4 / ip6
    # The directive as text, made once: records are parsed once and cached, and the text
    # names the matching directive in every result (ipaddress formats in Python, ~10 µs).
    text: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", self._render())

    @property
    def result(self) -> str:
        """The SPF result this directive yields on a match."""
        return QUALIFIERS[self.qualifier]

    def __str__(self) -> str:
        return self.text

    def _render(self) -> str:
        text = ("" if self.qualifier == "+" else self.qualifier) + self.name
        if self.network is not None:
            text += f":{self.network}"
        elif self.domain_spec is not None:
            text += f":{self.domain_spec}"
        if self.cidr4 is not None:
            text += f"/{self.cidr4}"
        if self.cidr6 is not None:
            text += f"//{self.cidr6}"
        return text


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed record: directives in order, plus the redirect and exp modifiers (§6)."""

    mechanisms: tuple[Mechanism, ...]
    redirect: str | None = None
    exp: str | None = None
    unknown: tuple[tuple[str, str], ...] = field(default=())


def is_spf_record(text: str) -> bool:
    """True for a version-1 record: "v=spf1" followed by a space or the end (§4.5)."""
    return text[:6].lower() == "v=spf1" and (len(text) == 6 or text[6] == " ")


@functools.lru_cache(maxsize=RECORD_CACHE_SIZE)
def parse_record(text: str) -> SpfRecord:
    """Parse a whole record; any syntax error anywhere raises ``SpfSyntaxError`` (§4.6).

    Cached (a pure function of the text, and the same few records come back message after
    message); errors are not cached, they are raised again."""
    if not is_spf_record(text):
        raise SpfSyntaxError("not an SPF version 1 record")
    if not text.isascii():  # §3.1 / §4.6.1: records are 7-bit ASCII
        raise SpfSyntaxError("non-ASCII character in record")
    mechanisms: list[Mechanism] = []
    redirect: str | None = None
    exp: str | None = None
    unknown: list[tuple[str, str]] = []
    for term in text[6:].split(" "):  # terms are separated by SP only (§4.6.1)
        if not term:
            continue
        modifier = _MODIFIER.fullmatch(term)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if (redirect if name == "redirect" else exp) is not None:  # §6: at most once
                    raise SpfSyntaxError(f"duplicate {name} modifier")
                _check_domain_spec(value)
                if name == "redirect":
                    redirect = value
                else:
                    exp = value
            else:
                validate_macro_string(value)  # §6.3 unknown modifiers must still parse
                unknown.append((name, value))
            continue
        mechanisms.append(_parse_mechanism(term))
    return SpfRecord(tuple(mechanisms), redirect, exp, tuple(unknown))


def _parse_mechanism(term: str) -> Mechanism:
    match = _MECHANISM.fullmatch(term)
    if not match:
        raise SpfSyntaxError(f"unknown term {term!r}")
    qualifier = match.group(1) or "+"
    name, rest = match.group(2).lower(), match.group(3)
    if name == "all":  # §5.1
        if rest:
            raise SpfSyntaxError(f"bad all mechanism {term!r}")
        return Mechanism(qualifier, name)
    if name in ("include", "exists"):  # §5.2, §5.7: domain-spec required
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs a domain: {term!r}")
        _check_domain_spec(rest[1:])
        return Mechanism(qualifier, name, rest[1:])
    if name in ("a", "mx"):  # §5.3, §5.4
        cidr = _DUAL_CIDR.fullmatch(rest)
        assert cidr is not None  # the pattern accepts any text
        spec, c4, c6 = cidr.group(1), cidr.group(2), cidr.group(3)
        cidr4, cidr6 = _cidr(c4, 32), _cidr(c6, 128)
        if spec:
            if not spec.startswith(":"):
                raise SpfSyntaxError(f"bad {name} mechanism {term!r}")
            _check_domain_spec(spec[1:])
            return Mechanism(qualifier, name, spec[1:], cidr4, cidr6)
        return Mechanism(qualifier, name, None, cidr4, cidr6)
    if name == "ptr":  # §5.5: no CIDR
        if not rest:
            return Mechanism(qualifier, name)
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"bad ptr mechanism {term!r}")
        _check_domain_spec(rest[1:])
        return Mechanism(qualifier, name, rest[1:])
    if name in ("ip4", "ip6"):  # §5.6
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs a network: {term!r}")
        address, slash, length = rest[1:].partition("/")
        bits = 32 if name == "ip4" else 128
        prefix = _cidr(length, bits) if slash else bits
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise SpfSyntaxError(f"bad address in {term!r}") from exc
        if ip.max_prefixlen != bits or prefix is None:
            raise SpfSyntaxError(f"bad {name} network {term!r}")
        network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        return Mechanism(qualifier, name, network=network)
    raise SpfSyntaxError(f"unknown mechanism {term!r}")


def _cidr(text: str | None, bits: int) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(r"0|[1-9][0-9]{0,2}", text) or int(text) > bits:
        raise SpfSyntaxError(f"bad CIDR length /{text}")
    return int(text)


def validate_macro_string(text: str, *, exp: bool = False) -> None:
    """Raise ``SpfSyntaxError`` unless ``text`` is a valid macro-string (§7.1)."""
    _tokens(text, exp=exp)


def _check_domain_spec(text: str) -> None:
    # domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand
    if not text:
        raise SpfSyntaxError("empty domain-spec")
    tokens = _tokens(text, exp=False)
    last = tokens[-1]
    if isinstance(last, tuple):
        return
    literal = last[:-1] if last.endswith(".") else last
    label = literal.rsplit(".", 1)
    if len(label) != 2 or not _TOPLABEL.fullmatch(label[1]):
        raise SpfSyntaxError(f"bad domain-spec {text!r}")


Token = str | tuple[str, int, bool, str]  # literal, or (letter, digits, reverse, delimiters)


def _tokens(text: str, *, exp: bool) -> list[Token]:
    tokens: list[Token] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            # macro-literal = %x21-24 / %x26-7E (§7.1); exp text also allows spaces (§6.2)
            if not ("!" <= ch <= "~" or (exp and ch == " ")):
                raise SpfSyntaxError(f"invalid character {ch!r} in {text!r}")
            literal.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in ("%", "_", "-"):
            literal.append({"%": "%", "_": " ", "-": "%20"}[nxt])
            i += 2
            continue
        match = _MACRO_EXPAND.match(text, i)
        if not match or match.group(1).lower() not in _MACRO_LETTERS:
            raise SpfSyntaxError(f"bad macro at {text[i:]!r}")
        letter, digits, reverse, delims = match.groups()
        if letter.lower() in _EXP_ONLY and not exp:
            raise SpfSyntaxError(f"%{{{letter}}} is only allowed in explanations")
        if digits and int(digits) == 0:  # §7.1: the DIGIT transformer must be at least 1
            raise SpfSyntaxError(f"zero transformer in {match.group(0)!r}")
        if literal:
            tokens.append("".join(literal))
            literal = []
        tokens.append((letter, int(digits) if digits else 0, bool(reverse), delims or "."))
        i = match.end()
    if literal or not tokens:
        tokens.append("".join(literal))
    return tokens


def uses_macro(text: str, letter: str) -> bool:
    """True when ``text`` contains the ``%{letter...}`` macro (any case)."""
    return any(m.group(1).lower() == letter for m in _MACRO_EXPAND.finditer(text))


@dataclass(frozen=True, slots=True)
class MacroContext:
    """Values behind the macro letters of §7.3; ``domain`` is the current <domain>."""

    sender: str  # <sender>, already "postmaster@domain" when the local-part was empty
    domain: str
    ip: IPAddress
    helo: str
    validated: str = "unknown"  # %{p}, resolved by the evaluator when used
    receiver: str = "unknown"  # %{r}
    timestamp: int = 0  # %{t}

    def value(self, letter: str) -> str:
        """The raw value of one macro letter (lower-case)."""
        local, _, sender_domain = self.sender.rpartition("@")
        if letter == "s":
            return self.sender
        if letter == "l":
            return local or "postmaster"
        if letter == "o":
            return sender_domain
        if letter == "d":
            return self.domain
        if letter == "i":  # §7.3: IPv6 as dotted nibbles
            if self.ip.version == 6:
                return ".".join(self.ip.exploded.replace(":", ""))
            return str(self.ip)
        if letter == "c":
            return str(self.ip)
        if letter == "p":
            return self.validated
        if letter == "v":
            return "in-addr" if self.ip.version == 4 else "ip6"
        if letter == "h":
            return self.helo
        if letter == "r":
            return self.receiver
        if letter == "t":
            return str(self.timestamp)
        raise SpfSyntaxError(f"unknown macro letter {letter!r}")


def expand(text: str, ctx: MacroContext, *, exp: bool = False) -> str:
    """Expand a macro-string (§7.3, §7.4); ``exp`` allows %{c}, %{r}, %{t} and spaces."""
    out: list[str] = []
    for token in _tokens(text, exp=exp):
        if isinstance(token, str):
            out.append(token)
            continue
        letter, digits, reverse, delims = token
        parts = re.split("[" + re.escape(delims) + "]", ctx.value(letter.lower()))
        if reverse:
            parts.reverse()
        if digits:
            parts = parts[-digits:]
        value = ".".join(parts)
        if letter.isupper():  # §7.3: upper-case macro letters are URL-escaped
            value = quote(value, safe="-._~")
        out.append(value)
    return "".join(out)


def expand_domain(text: str, ctx: MacroContext) -> str:
    """Expand a domain-spec; names over 253 characters lose left-hand labels (§7.3)."""
    name = expand(text, ctx).rstrip(".")
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name

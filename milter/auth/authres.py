"""Authentication-Results header fields (RFC 8601): write ours, read and sort upstream ones.

``format_authres`` builds the value of our header from ``AuthResult``s. ``parse_authres``
reads a header value tolerantly (comments, quoted strings, a version, values left
unquoted by sloppy writers). ``sort_authres`` says which existing headers forge our
authserv-id (to delete) and which come from trusted upstream ids (to believe), as RFC 8601
§5 asks of a receiving ADMD.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from milter.model.auth import AuthResult, AuthStatus

__all__ = [
    "ParsedAuthres",
    "UpstreamAuthres",
    "format_authres",
    "is_property_name",
    "parse_authres",
    "quote_value",
    "sort_authres",
]

# RFC 2045 §5.1 token: any CHAR except SPACE, CTLs and tspecials
_TOKEN = re.compile(r'^[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]+$')
# RFC 8601 §2.2 pvalue alternative: [ [ local-part ] "@" ] domain-name (dot-atom local part)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDRESS = re.compile(rf"^(?:{_ATEXT}(?:\.{_ATEXT})*)?@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_KEYWORD = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")  # RFC 8601 Keyword
_PROPERTY = re.compile(r"^[A-Za-z0-9-]+\.[A-Za-z0-9._-]+$")  # ptype "." property


def is_property_name(name: str) -> bool:
    """True for a well-formed ``ptype.property`` name (RFC 8601 §2.2), safe to write back."""
    return bool(_PROPERTY.match(name))


def quote_value(value: str) -> str:
    """A ``value`` (RFC 2045 token or quoted-string) or pvalue, quoted only when needed."""
    text = _printable(value)
    if _TOKEN.match(text) or _ADDRESS.match(text):
        return text
    return _quoted(text)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")


def _printable(value: str) -> str:
    """Header-safe text: no control characters (no CR/LF injection), ASCII only."""
    if value.isascii() and value.isprintable():  # the usual case: nothing to replace
        return value.strip()
    text = _CONTROLS.sub(" ", value).strip()
    return text.encode("ascii", errors="replace").decode("ascii")


def _resinfo(result: AuthResult) -> str:
    if not _KEYWORD.match(result.method):
        raise ValueError(f"invalid method name {result.method!r}")
    words = [f"{result.method}={result.result}"]
    if result.reason:
        words.append(f"reason={_quoted(_printable(result.reason))}")  # RFC 8601 §2.7
    for name, value in result.props.items():
        if not _PROPERTY.match(name):
            raise ValueError(f"invalid property name {name!r}")
        words.append(f"{name}={quote_value(value)}")
    return " ".join(words)


def format_authres(authserv_id: str, results: Sequence[AuthResult], *, fold: str = "\n\t") -> str:
    """The value of our Authentication-Results header (RFC 8601 §2.2).

    Each result goes on its own line: ``fold`` follows every ";" (the milter wants
    "\\n\\t", an SMTP-level writer "\\r\\n\\t", one line " "). No results → "id; none".
    """
    head = quote_value(authserv_id)
    if not results:
        return f"{head}; none"
    return (";" + fold).join([head, *(_resinfo(result) for result in results)])


@dataclass(frozen=True, slots=True)
class ParsedAuthres:
    """One parsed Authentication-Results header value."""

    authserv_id: str
    version: int | None
    results: tuple[AuthResult, ...]
    unparsed: tuple[str, ...] = ()  # resinfo parts we could not read (unknown result …)


def _strip_comments(text: str) -> str:
    """Replace (nested, escaped) comments outside quoted strings by a space (RFC 5322 §3.2.2)."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
        elif char == "\\" and (quoted or depth):
            escaped = True
            if depth == 0:
                out.append(char)
        elif quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(" ")
        elif depth == 0:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


_WORD = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^\s=]+))', re.DOTALL)
_PAIR = re.compile(r'\s*([^\s=]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|(\S*))', re.DOTALL)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    """name=value pairs; a value is a quoted string or runs to the next white space."""
    position = 0
    while match := _PAIR.match(text, position):
        quoted, bare = match.group(2), match.group(3)
        yield match.group(1), _unescape(quoted) if quoted is not None else (bare or "")
        position = match.end()


def _parse_resinfo(text: str) -> AuthResult | None:
    pairs = list(_pairs(text))
    if not pairs:
        return None
    method, token = pairs[0]
    method = method.split("/", 1)[0].lower()  # drop a method-version (RFC 8601 §2.2)
    try:
        status = AuthStatus(token.lower())
    except ValueError:
        return None
    reason, props = "", {}
    for name, value in pairs[1:]:
        if name.lower() == "reason":
            reason = value
        elif "." in name:
            props[name.lower()] = value
    return AuthResult(method, status, reason, props)


def parse_authres(value: str) -> ParsedAuthres | None:
    """Parse one header value; None when not even an authserv-id can be read."""
    parts = _split_outside_quotes(_strip_comments(value), ";")
    head = _WORD.match(parts[0])
    if head is None:
        return None
    authserv_id = _unescape(head.group(1)) if head.group(1) is not None else head.group(2)
    rest = parts[0][head.end() :].strip()
    version = int(rest) if rest.isascii() and rest.isdigit() else None  # "¹".isdigit() is True
    results, unparsed = [], []
    for part in parts[1:]:
        if not part.strip() or part.strip().lower() == "none":
            continue  # RFC 8601 §2.2 no-result
        parsed = _parse_resinfo(part)
        if parsed is None:
            unparsed.append(part.strip())
        else:
            results.append(parsed)
    return ParsedAuthres(authserv_id, version, tuple(results), tuple(unparsed))


@dataclass(frozen=True, slots=True)
class UpstreamAuthres:
    """Existing Authentication-Results headers sorted by authserv-id (indexes are positions
    in the sequence given to ``sort_authres``, 0 = first)."""

    forged: tuple[int, ...]  # claim our authserv-id: delete them (RFC 8601 §5)
    trusted: tuple[tuple[int, ParsedAuthres], ...]  # from a trusted upstream authserv-id
    ignored: tuple[int, ...]  # anyone else, or unreadable: keep, but do not believe

    def removal_order(self) -> tuple[int, ...]:
        """Forged indexes last first, so deleting one does not shift the next."""
        return tuple(sorted(self.forged, reverse=True))


def norm_authserv_id(name: str) -> str:
    """An authserv-id as compared: case-folded, without surrounding space or final dots
    (``MX.Example.`` is ``mx.example``: a forger's trailing dot must not hide a forgery)."""
    return name.strip().rstrip(".").casefold()


def sort_authres(
    values: Sequence[str], authserv_id: str, trusted_ids: Collection[str]
) -> UpstreamAuthres:
    """Sort existing header values: forged (our id), trusted upstream, or ignored.

    Ids compare case-insensitively and without a final dot. Our own id wins over
    ``trusted_ids``: a header carrying it before we add ours can only be a forgery.
    """
    ours = norm_authserv_id(authserv_id)
    trusted = {norm_authserv_id(name) for name in trusted_ids}
    forged: list[int] = []
    believed: list[tuple[int, ParsedAuthres]] = []
    ignored: list[int] = []
    for index, value in enumerate(values):
        parsed = parse_authres(value)
        name = norm_authserv_id(parsed.authserv_id) if parsed else ""
        if name == ours:
            forged.append(index)
        elif parsed and name in trusted:
            believed.append((index, parsed))
        else:
            ignored.append(index)
    return UpstreamAuthres(tuple(forged), tuple(believed), tuple(ignored))

"""Host names between Unicode and ASCII (punycode), with UTS #46 mapping from ``idna``.

Browsers map a host with UTS #46 (non-transitional, as the WHATWG URL Standard asks:
``ß`` stays ``ß``, full-width letters and ideographic dots fold, case folds) and then
Punycode-encode each label. The ``idna`` package does the mapping; its strict IDNA 2008
validity checks are not applied here on purpose: a host a strict check rejects is still
a host an attacker can write, and the detector must see the form it would take.
"""

from __future__ import annotations

import unicodedata

import idna as _idna

_DOT_LIKE = {ord(c): "." for c in "\u3002\uff0e\uff61"}


def _mapped(host: str) -> str:
    try:
        return str(_idna.uts46_remap(host, std3_rules=False, transitional=False))
    except (_idna.IDNAError, UnicodeError, ValueError):
        return unicodedata.normalize("NFKC", host.translate(_DOT_LIKE)).casefold()


def _label_to_ascii(label: str) -> str:
    if label.isascii():
        return label
    try:
        return "xn--" + label.encode("punycode").decode("ascii")
    except UnicodeError:  # pragma: no cover - punycode encodes any str
        return label


def to_ascii(host: str) -> str:
    """ASCII (A-label) form of ``host``: UTS #46 mapped, non-ASCII labels punycoded."""
    if host.isascii():
        return host.lower()
    return ".".join(_label_to_ascii(label) for label in _mapped(host).split("."))


def _label_to_unicode(label: str) -> str:
    if label[:4].lower() == "xn--":
        try:
            return label[4:].encode("ascii").decode("punycode").lower()
        except (UnicodeError, ValueError):
            return label
    return label


def to_unicode(host: str) -> str:
    """Unicode form of a host (``xn--`` labels decoded; undecodable labels kept as written)."""
    if "xn--" not in host.lower():
        return host
    return ".".join(_label_to_unicode(label) for label in host.split("."))


def has_punycode(host: str) -> bool:
    """True when some label of ``host`` is an ``xn--`` A-label."""
    lowered = host.lower()
    return lowered.startswith("xn--") or ".xn--" in lowered


def _label_ok(label: str) -> bool:
    if label[:4].lower() != "xn--":
        return True
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
        remapped = _idna.uts46_remap(decoded, std3_rules=False, transitional=False)
    except (_idna.IDNAError, UnicodeError, ValueError):
        return False
    return bool(decoded) and remapped == decoded and not decoded.isascii()


def is_valid(host: str) -> bool:
    """True when UTS #46 processing, as browsers run it, accepts ``host``: no disallowed
    code point (U+FDD0, U+FFFD…) and every ``xn--`` label decodes to a mapped label."""
    if host.isascii() and "xn--" not in host.lower():
        return True
    try:
        mapped = _idna.uts46_remap(host, std3_rules=False, transitional=False)
    except (_idna.IDNAError, UnicodeError, ValueError):
        return False
    return all(_label_ok(label) for label in str(mapped).split("."))

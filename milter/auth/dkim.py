"""DKIM verification (RFC 6376): every DKIM-Signature is checked and reported on its own.

Three steps, as in style.md §1.6: ``parse_signatures`` (pure) reads the signature fields,
``fetch_key`` asks our ``Resolver`` for each key record, and ``evaluate_signature`` (no I/O)
runs dkimpy's canonicalisation and crypto. dkimpy's DNS seam is its ``dnsfunc`` argument:
we hand it a function that returns the record we already fetched. (``dkim.asyncsupport``
is not used: it imports ``aiodns`` at import time and would do its own DNS.)

Algorithms: ``rsa-sha256`` and ``ed25519-sha256`` (RFC 8463; dkimpy verifies it with
PyNaCl, the key record's ``p=`` being the raw 32-byte public key in base64). ``rsa-sha1``
verifies but is reported ``policy`` (RFC 8301).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import InvalidTagValueList

from milter.auth.dkimpy_btag import install as install_btag
from milter.auth.dkimpy_feed import DkimpyMessage, load_verifier
from milter.auth.dkimpy_keys import install as install_key_cache
from milter.auth.dkimpy_rsa import install as install_rsa
from milter.auth.dkimpy_tags import install as install_tag_memo
from milter.auth.dkimpy_tags import parse_tag_value
from milter.dns.resolver import DnsError, DnsTimeout, Resolver
from milter.model.auth import AuthResult, AuthStatus


class _ResultsNotErrors(logging.LoggerAdapter):  # type: ignore[type-arg]
    """dkimpy logs a missing key or a DNS timeout with ``logger.error``; for Tocsin those are
    ordinary results (permerror/temperror in the verdict), so they are logged at DEBUG."""

    def error(self, msg: object, *args: object, **kwargs: object) -> None:
        """Demoted to DEBUG."""
        self.debug(msg, *args, **kwargs)  # type: ignore[arg-type]


install_rsa()  # RSA verified by OpenSSL first; dkimpy's int/bytes loops → int methods
install_key_cache()  # dkimpy parses a key record once, not once per signature and message
install_tag_memo()  # a signature field's tags parsed once for Tocsin and dkimpy
install_btag()  # a signature field's b= emptied without back-tracking
DKIMPY_LOG = _ResultsNotErrors(logging.getLogger("tocsin.dkimpy"), {})

__all__ = [
    "DEFAULT_MAX_SIGNATURES",
    "DEFAULT_MIN_KEY_BITS",
    "DkimSignature",
    "DkimWork",
    "KeyRecord",
    "evaluate_signature",
    "fetch_key",
    "finish_dkim",
    "parse_signatures",
    "start_dkim",
    "verify_dkim",
]

DEFAULT_MAX_SIGNATURES = 5  # bound on the DNS and CPU work one message can cause
KEY_CACHE_SIZE = 1024  # parsed key records kept across messages (bounded: DNS text)
DEFAULT_MIN_KEY_BITS = 1024  # RFC 8301 §3.2: verifiers MUST NOT accept RSA keys < 1024 bits
METHOD = "dkim"


@dataclass(frozen=True, slots=True)
class DkimSignature:
    """The fields of one DKIM-Signature header that we report on (RFC 6376 §3.5)."""

    index: int  # position among the DKIM-Signature fields, 0 = topmost
    domain: str  # d=
    selector: str  # s=
    algorithm: str  # a=
    b_prefix: str  # first 8 characters of b=, enough to tell signatures apart (RFC 6008)
    identity: str = ""  # i=
    error: str = ""  # why the field is malformed; "" when it is well-formed
    expired: bool = False  # x= is in the past (RFC 6376 §3.5)
    body_length: int | None = None  # l=: only this many body octets are signed
    canonicalization: str = "simple/simple"  # c=

    @property
    def key_name(self) -> str:
        """The DNS name of the key record (RFC 6376 §3.6.2.1)."""
        return f"{self.selector}._domainkey.{self.domain}"

    def props(self) -> dict[str, str]:
        """RFC 8601 §2.7.1 properties for this signature."""
        props = {"header.d": self.domain, "header.s": self.selector, "header.a": self.algorithm}
        if self.identity:
            props["header.i"] = self.identity
        if self.b_prefix:
            props["header.b"] = self.b_prefix
        return props


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Outcome of one key lookup: the TXT text, or the status the lookup already decided."""

    text: str | None
    status: AuthStatus | None = None  # temperror / permerror when there is no usable record
    reason: str = ""


def parse_signatures(headers: Sequence[tuple[bytes, bytes]]) -> tuple[DkimSignature, ...]:
    """Read every DKIM-Signature among ``headers`` (dkimpy's (name, value) pairs), top first."""
    values = [value for name, value in headers if name.lower() == b"dkim-signature"]
    return tuple(_parse_one(i, value) for i, value in enumerate(values))


def _parse_one(index: int, value: bytes) -> DkimSignature:
    try:
        tags = parse_tag_value(value)
    except InvalidTagValueList as exc:
        return DkimSignature(index, "", "", "", "", error=f"bad tag list: {exc}")
    sig = DkimSignature(
        index=index,
        domain=_text(tags.get(b"d", b"")).lower(),
        selector=_text(tags.get(b"s", b"")),
        algorithm=_text(tags.get(b"a", b"")).lower(),
        b_prefix=_no_whitespace(_text(tags.get(b"b", b"")))[:8],
        identity=_text(tags.get(b"i", b"")),
        canonicalization=_text(tags.get(b"c", b"simple/simple")),
    )
    try:
        dkim.validate_signature_fields(tags)  # RFC 6376 §6.1.1 checks
    except dkim.ValidationError as exc:
        message = str(exc)
        expired = message.startswith("x= value is past")
        return replace(sig, error=message, expired=expired)
    if not _valid_dns_name(sig.key_name):
        return replace(sig, error=f"key name {sig.key_name!r} is not a valid DNS name")
    length = tags.get(b"l")
    return replace(sig, body_length=int(length)) if length else sig


def _no_whitespace(text: str) -> str:
    r"""``re.sub(r"\s+", "", text)`` without ``re`` (~6 us for a 350-character b=): str.split
    and ``\s`` share one definition of whitespace (Py_UNICODE_ISSPACE)."""
    return "".join(text.split())


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").strip()


def _valid_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(0 < len(label) <= 63 for label in labels)


async def fetch_key(resolver: Resolver, sig: DkimSignature) -> KeyRecord:
    """Fetch the key TXT record for ``sig``; DNS failures become temperror (RFC 6376 §6.1.2)."""
    try:
        answer = await resolver.query(sig.key_name, "TXT")
    except DnsTimeout:
        return KeyRecord(None, AuthStatus.TEMPERROR, f"DNS timeout looking up {sig.key_name}")
    except DnsError as exc:
        return KeyRecord(None, AuthStatus.TEMPERROR, f"DNS error looking up {sig.key_name}: {exc}")
    if not answer.records:
        # RFC 6376 §6.1.2 step 3: no key record → PERMFAIL (no key for signature)
        return KeyRecord(None, AuthStatus.PERMERROR, f"no key for signature at {sig.key_name}")
    # RFC 6376 §3.6.2.2: with several records a verifier may choose one; we take the first.
    return KeyRecord(answer.records[0])


def evaluate_signature(
    verifier: dkim.DKIM, sig: DkimSignature, key: KeyRecord, min_key_bits: int
) -> AuthResult:
    """Verify one signature against its fetched key; no I/O happens here."""
    props = sig.props()

    def result(status: AuthStatus, reason: str) -> AuthResult:
        return AuthResult(METHOD, status, reason, props)

    if sig.expired:
        return result(AuthStatus.FAIL, f"signature expired ({sig.error})")
    if sig.error:
        return result(AuthStatus.PERMERROR, f"malformed signature: {sig.error}")
    if key.status is not None or key.text is None:
        return result(key.status or AuthStatus.PERMERROR, key.reason)
    checked = _check_key(sig, key.text)
    if isinstance(checked, AuthResult):
        return AuthResult(METHOD, checked.result, checked.reason, props)
    key_type, bits = checked
    key_desc = f"{bits}-bit {key_type} key"
    try:
        valid = verifier.verify(idx=sig.index, dnsfunc=_serve(key.text))
    except dkim.ValidationError as exc:
        if str(exc).startswith("body hash mismatch"):
            return result(AuthStatus.FAIL, f"body hash mismatch; {key_desc}")
        return result(AuthStatus.PERMERROR, f"{exc}; {key_desc}")
    except dkim.DKIMException as exc:  # bad c=, key/digest mismatch …: RFC 6376 §6.1 PERMFAIL
        return result(AuthStatus.PERMERROR, f"{exc}; {key_desc}")
    if not valid:
        return result(AuthStatus.FAIL, f"signature did not verify; {key_desc}")
    if key_type == "rsa" and bits < min_key_bits:
        return result(AuthStatus.POLICY, f"weak key: {key_desc} (minimum {min_key_bits})")
    unsigned = _unsigned_octets(verifier, sig)
    if unsigned > 0:
        # RFC 6376 §8.2: content after the l= count is not covered by the signature
        reason = f"{unsigned} body octets added after the signed l={sig.body_length}"
        return result(AuthStatus.POLICY, f"{reason}; {key_desc}")
    if sig.algorithm == "rsa-sha1":
        return result(AuthStatus.POLICY, f"rsa-sha1 is not accepted (RFC 8301 §3.1); {key_desc}")
    return result(AuthStatus.PASS, f"good signature; {key_desc}")


def _unsigned_octets(verifier: dkim.DKIM, sig: DkimSignature) -> int:
    """How many canonicalised body octets follow the signed l= length (0 without l=)."""
    if sig.body_length is None:
        return 0
    policy = CanonicalizationPolicy.from_c_value(sig.canonicalization.encode())
    return len(policy.canonicalize_body(verifier.body)) - sig.body_length


def _check_key(sig: DkimSignature, text: str) -> tuple[str, int] | AuthResult:
    """Parse the key record (RFC 6376 §3.6.1); return (key type, bits) or the failure."""
    facts = _key_facts(sig.key_name, text)
    if isinstance(facts, str):
        return AuthResult(METHOD, AuthStatus.PERMERROR, facts)
    key_type, bits = facts
    if not sig.algorithm.startswith(key_type + "-"):
        # RFC 6376 §6.1.2 step 6: k= must match the signature algorithm
        reason = f"key type {key_type} does not match a={sig.algorithm}"
        return AuthResult(METHOD, AuthStatus.PERMERROR, reason)
    if isinstance(bits, str):
        return AuthResult(METHOD, AuthStatus.PERMERROR, bits)
    if bits is None:  # PyNaCl is a dependency; only a broken install lands here
        reason = "ed25519 key not checked: PyNaCl is not installed"
        return AuthResult(METHOD, AuthStatus.NEUTRAL, reason)
    return key_type, bits


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _key_facts(key_name: str, text: str) -> tuple[str, int | str | None] | str:
    """What a key record says: why it is unusable as a whole, or (key type, bits) where
    the bits are why the key itself is unreadable, or None without PyNaCl. Cached: a pure
    function of the record, and the same keys sign message after message (dkimpy parses an
    RSA key's ASN.1 in pure Python)."""
    raw = text.encode("utf-8", errors="replace")
    try:
        tags = parse_tag_value(raw)
    except InvalidTagValueList as exc:
        return f"bad key record: {exc}"
    if tags.get(b"p", b"x").strip() == b"":
        return "key revoked (empty p=)"
    key_type = _text(tags.get(b"k", b"rsa")).lower()  # RFC 6376 §3.6.1: k= defaults to rsa
    try:
        _, bits, _, _ = dkim.evaluate_pk(key_name.encode(), raw)
    except dkim.NaClNotFoundError:
        return key_type, None
    except dkim.KeyFormatError as exc:
        return key_type, f"bad key record: {exc}"
    return key_type, int(bits)


def _serve(text: str) -> Callable[..., bytes]:
    """A dkimpy ``dnsfunc`` that returns the record we already fetched."""
    record = text.encode("utf-8", errors="replace")

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return record

    return dnsfunc


@dataclass(frozen=True, slots=True)
class DkimWork:
    """A signed message, parsed: what ``finish_dkim`` verifies once the keys are fetched."""

    verifier: dkim.DKIM
    signatures: tuple[DkimSignature, ...]
    max_signatures: int
    min_key_bits: int


async def verify_dkim(
    message: bytes | DkimpyMessage,
    resolver: Resolver,
    *,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
    min_key_bits: int = DEFAULT_MIN_KEY_BITS,
) -> tuple[AuthResult, ...]:
    """Verify every DKIM signature of ``message``: one ``AuthResult`` per signature.

    ``message`` is the raw bytes or ``dkimpy_feed.prepare``'s view (shared with ARC).
    An unsigned message gives one ``none`` result. Signatures past ``max_signatures`` are
    reported ``neutral`` with the reason "not evaluated".
    """
    started = start_dkim(message, max_signatures=max_signatures, min_key_bits=min_key_bits)
    if isinstance(started, DkimWork):
        return await finish_dkim(started, resolver)
    return started


def start_dkim(
    message: bytes | DkimpyMessage,
    *,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
    min_key_bits: int = DEFAULT_MIN_KEY_BITS,
) -> tuple[AuthResult, ...] | DkimWork:
    """``verify_dkim`` up to its first DNS query (no I/O): its results when it needs none
    (unsigned message, unparsable header), else the signatures to verify. A caller that
    runs DKIM beside other checks creates a task only for the second case."""
    try:
        # minkey=0: weak keys are judged below, so they report "policy", not a parse error
        verifier = load_verifier(dkim.DKIM, message, minkey=0, logger=DKIMPY_LOG)
    except dkim.DKIMException as exc:
        return (AuthResult(METHOD, AuthStatus.PERMERROR, f"unparsable message header: {exc}"),)
    signatures = parse_signatures(verifier.headers)
    if not signatures:
        return (AuthResult(METHOD, AuthStatus.NONE, "message not signed"),)
    return DkimWork(verifier, signatures, max_signatures, min_key_bits)


async def finish_dkim(work: DkimWork, resolver: Resolver) -> tuple[AuthResult, ...]:
    """The rest of ``verify_dkim``: fetch the keys (concurrently), verify each signature."""
    checked, skipped = (
        work.signatures[: work.max_signatures],
        work.signatures[work.max_signatures :],
    )
    if len(checked) == 1:  # nothing to run beside it: no task
        keys = [await _key_for(resolver, checked[0])]
    else:
        keys = await asyncio.gather(*(_key_for(resolver, sig) for sig in checked))
    pairs = zip(checked, keys, strict=True)
    results = [evaluate_signature(work.verifier, s, k, work.min_key_bits) for s, k in pairs]
    reason = f"not evaluated: over the limit of {work.max_signatures} signatures"
    results += [AuthResult(METHOD, AuthStatus.NEUTRAL, reason, s.props()) for s in skipped]
    return tuple(results)


async def _key_for(resolver: Resolver, sig: DkimSignature) -> KeyRecord:
    if sig.error:  # a malformed signature needs no DNS
        return KeyRecord(None, AuthStatus.PERMERROR, sig.error)
    return await fetch_key(resolver, sig)

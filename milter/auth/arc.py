"""ARC chain validation (RFC 8617 §5.2) with dkimpy, keys fetched through our Resolver.

``arc_key_names`` (pure) lists the key records the ARC sets point to, ``fetch_keys`` gets
them concurrently, and ``evaluate_chain`` runs dkimpy's ``ARC.verify`` with a ``dnsfunc``
that serves only those prefetched answers (no I/O inside). ``arc_override`` says whether a
passing chain from a trusted sealer may override a DMARC failure (RFC 8617 §7.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import dkim
from dkim.util import InvalidTagValueList

from milter.auth.dkim import DKIMPY_LOG
from milter.auth.dkimpy_feed import DkimpyMessage, load_verifier
from milter.auth.dkimpy_tags import parse_tag_value
from milter.dns.resolver import DnsError, DnsTimeout, Resolver
from milter.model.auth import AuthResult, AuthStatus

__all__ = [
    "MAX_INSTANCES",
    "ArcResult",
    "ArcWork",
    "KeyAnswer",
    "arc_key_names",
    "arc_override",
    "check_arc",
    "evaluate_chain",
    "fetch_keys",
    "finish_arc",
    "sealer_domains",
    "start_arc",
]

METHOD = "arc"
MAX_INSTANCES = 50  # RFC 8617 §4.2.1: i= is 1 to 50; a longer chain fails without DNS work
NOT_SEALED = "message is not ARC sealed"
_SEAL = b"arc-seal"
_SIGNATURES = (b"arc-seal", b"arc-message-signature")


@dataclass(frozen=True, slots=True)
class ArcResult:
    """Chain validation status with the instance count and who sealed each instance."""

    status: AuthStatus  # pass / fail / none, or temperror when a key lookup failed
    instances: int  # highest i= seen
    sealers: tuple[str, ...]  # ARC-Seal d= for i=1, 2, …: the last one handed us the message
    reason: str

    def auth_result(self) -> AuthResult:
        """This result as an RFC 8601 ``arc=`` entry."""
        detail = f"{self.instances} instance(s), sealers: {', '.join(self.sealers) or '-'}"
        reason = f"{self.reason}; {detail}" if self.instances else self.reason
        return AuthResult(METHOD, self.status, reason)


@dataclass(frozen=True, slots=True)
class KeyAnswer:
    """One key lookup: the TXT text (None when absent), or the DNS failure text."""

    text: str | None
    error: str = ""


class _KeyLookupFailed(Exception):
    """Raised inside dkimpy's verify when it needs a key whose lookup failed."""


def _arc_fields(
    headers: Sequence[tuple[bytes, bytes]], names: Collection[bytes]
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    fields = []
    for name, value in headers:
        if name.lower() in names:
            try:
                fields.append((name.lower(), parse_tag_value(value)))
            except InvalidTagValueList:
                continue  # dkimpy reports the malformed set when it validates the chain
    return fields


def arc_key_names(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str, ...]:
    """Key record names (s._domainkey.d) of every ARC-Seal and ARC-Message-Signature."""
    names = []
    for _, tags in _arc_fields(headers, _SIGNATURES):
        selector, domain = tags.get(b"s"), tags.get(b"d")
        if selector and domain:
            names.append(_norm(selector + b"._domainkey." + domain))
    return tuple(dict.fromkeys(names))


def sealer_domains(headers: Sequence[tuple[bytes, bytes]]) -> tuple[int, tuple[str, ...]]:
    """(highest instance, ARC-Seal d= ordered by i=) from the message headers."""
    by_instance: dict[int, str] = {}
    for _, tags in _arc_fields(headers, (_SEAL,)):
        instance = tags.get(b"i", b"").strip()
        if instance.isascii() and instance.isdigit():
            by_instance.setdefault(int(instance), _norm(tags.get(b"d", b"")))
    top = max(by_instance, default=0)
    return top, tuple(by_instance[i] for i in sorted(by_instance))


def _norm(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").strip().rstrip(".").lower()


async def fetch_keys(resolver: Resolver, names: Sequence[str]) -> dict[str, KeyAnswer]:
    """Look up every key record concurrently; failures are kept, not raised."""
    if len(names) == 1:  # one sealer signing both fields, the usual case: no task
        return {names[0]: await _fetch(resolver, names[0])}
    answers = await asyncio.gather(*(_fetch(resolver, name) for name in names))
    return dict(zip(names, answers, strict=True))


async def _fetch(resolver: Resolver, name: str) -> KeyAnswer:
    try:
        answer = await resolver.query(name, "TXT")
    except DnsTimeout:
        return KeyAnswer(None, f"DNS timeout looking up {name}")
    except DnsError as exc:
        return KeyAnswer(None, f"DNS error looking up {name}: {exc}")
    return KeyAnswer(answer.records[0] if answer.records else None)


def _serve(keys: Mapping[str, KeyAnswer]) -> Callable[..., bytes | None]:
    """A dkimpy ``dnsfunc`` over the prefetched answers (a missing key reads as absent)."""

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        answer = keys.get(_norm(name), KeyAnswer(None))
        if answer.error:
            raise _KeyLookupFailed(answer.error)
        return answer.text.encode("utf-8", errors="replace") if answer.text else None

    return dnsfunc


def evaluate_chain(
    verifier: dkim.ARC, keys: Mapping[str, KeyAnswer], sealers: tuple[int, tuple[str, ...]]
) -> ArcResult:
    """Validate the chain (RFC 8617 §5.2) against prefetched keys; no I/O."""
    instances, domains = sealers
    try:
        cv, _, why = verifier.verify(dnsfunc=_serve(keys))
    except _KeyLookupFailed as exc:
        return ArcResult(AuthStatus.TEMPERROR, instances, domains, str(exc))
    except dkim.DKIMException as exc:  # malformed set: RFC 8617 §5.2 step 3 → fail
        return ArcResult(AuthStatus.FAIL, instances, domains, str(exc))
    if cv is None:
        # dkimpy's "chain terminated": a sealer already wrote cv=fail. RFC 8617 §5.2 step 2
        # makes the status fail.
        return ArcResult(AuthStatus.FAIL, instances, domains, f"chain terminated: {why}")
    status = {dkim.CV_Pass: AuthStatus.PASS, dkim.CV_None: AuthStatus.NONE}.get(cv, AuthStatus.FAIL)
    reason = NOT_SEALED if status is AuthStatus.NONE else str(why)
    return ArcResult(status, instances, domains, reason)


@dataclass(frozen=True, slots=True)
class ArcWork:
    """A sealed message, parsed: what ``finish_arc`` validates once the keys are fetched."""

    verifier: dkim.ARC
    sealers: tuple[int, tuple[str, ...]]


async def check_arc(
    message: bytes | DkimpyMessage, resolver: Resolver, *, min_key_bits: int = 1024
) -> ArcResult:
    """Validate the ARC chain of ``message`` (raw, or ``dkimpy_feed.prepare``'s view shared
    with DKIM); DNS failures give temperror."""
    started = start_arc(message, min_key_bits=min_key_bits)
    if isinstance(started, ArcWork):
        return await finish_arc(started, resolver)
    return started


def start_arc(message: bytes | DkimpyMessage, *, min_key_bits: int = 1024) -> ArcResult | ArcWork:
    """``check_arc`` up to its first DNS query (no I/O): its result when it needs none
    (no ARC field, unparsable header, too many sets), else the chain to validate. A
    caller that runs ARC beside other checks creates a task only for the second case."""
    try:
        verifier = load_verifier(dkim.ARC, message, minkey=min_key_bits, logger=DKIMPY_LOG)
    except dkim.DKIMException as exc:
        return ArcResult(AuthStatus.FAIL, 0, (), f"unparsable message header: {exc}")
    if not any(name.lower().rstrip() in dkim.ARC.ARC_HEADERS for name, _ in verifier.headers):
        # What dkimpy answers without ARC fields, without its canonicalising every header.
        return ArcResult(AuthStatus.NONE, 0, (), NOT_SEALED)
    sealers = sealer_domains(verifier.headers)
    if sealers[0] > MAX_INSTANCES:
        reason = f"{sealers[0]} ARC sets, more than {MAX_INSTANCES} (RFC 8617 §4.2.1)"
        return ArcResult(AuthStatus.FAIL, sealers[0], sealers[1], reason)
    return ArcWork(verifier, sealers)


async def finish_arc(work: ArcWork, resolver: Resolver) -> ArcResult:
    """The rest of ``check_arc``: fetch the keys, validate the chain."""
    keys = await fetch_keys(resolver, arc_key_names(work.verifier.headers))
    return evaluate_chain(work.verifier, keys, work.sealers)


def arc_override(arc_result: ArcResult, trusted_sealers: Collection[str]) -> bool:
    """True when the chain passes and its LAST sealer (highest i=) is trusted.

    Only the sealer that handed us the message is considered: an earlier trusted sealer
    says nothing about what later, untrusted hops did. Domains match exactly
    (case-insensitive, no subdomain match).
    """
    if arc_result.status is not AuthStatus.PASS or not arc_result.sealers:
        return False
    trusted = {name.strip().rstrip(".").lower() for name in trusted_sealers}
    return arc_result.sealers[-1] in trusted

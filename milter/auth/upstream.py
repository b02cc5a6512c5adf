"""Results from trusted upstream Authentication-Results headers, and when they count.

Which headers are believed (``trusted_block``), RFC 8601 §5 and §7.1: headers are
prepended hop by hop, so only the top of the message was written after the last hop we
do not trust. Reading the Authentication-Results fields from the top, we take fields from
trusted authserv-ids and stop at the first field that is unreadable, carries another id,
or carries our own id (a forgery), and at a second field from an id already taken (a
trusted relay writes one per pass; a lower copy is an older pass or a forgery it failed
to delete). Nothing below that point is believed, whatever id it claims.

Which results stand in for ours (pure functions, no I/O):

- ``spf``: only when our SMTP client cannot be the sender's own server (an internal hop:
  loopback, RFC 1918, link-local or IPv6 ULA address) or is unknown; and only when the
  upstream ``smtp.mailfrom`` domain is our MAIL FROM domain. Our own SPF check against an
  internal relay's address says nothing about the sender.
- ``dkim``, ``arc``, ``dmarc``: we always verify ourselves; an upstream result replaces
  ours only where ours is ``temperror`` (the same signature by ``header.d``/``header.s``
  and ``header.b`` prefix for DKIM, the same ``header.from`` for DMARC).

Adopted results keep the upstream status and properties; the reason starts with
"from upstream <authserv-id>" so they stand apart in our header and in findings.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from milter.auth.arc import ArcResult
from milter.auth.authres import (
    ParsedAuthres,
    is_property_name,
    norm_authserv_id,
    parse_authres,
)
from milter.auth.dmarc import DmarcResult
from milter.auth.dmarc_record import Policy
from milter.model.auth import AuthResult, AuthStatus

__all__ = [
    "INTERNAL_NETWORKS",
    "UpstreamResult",
    "adopt",
    "arc_from_upstream",
    "dkim_from_upstream",
    "dmarc_from_upstream",
    "is_internal_client",
    "spf_from_upstream",
    "trusted_block",
]

INTERNAL_NETWORKS = tuple(
    ip_network(net)
    for net in (
        "127.0.0.0/8",  # loopback (also Postfix's fake client for non-SMTP mail)
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local
        "::1/128",
        "fc00::/7",  # RFC 4193 unique local
        "fe80::/10",
    )
)
PREFIX = "from upstream"


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """One result taken from a trusted upstream header, labelled with its authserv-id."""

    authserv_id: str
    result: AuthResult


def trusted_block(
    values: Sequence[str], authserv_id: str, trusted_ids: Collection[str]
) -> tuple[ParsedAuthres, ...]:
    """The believed upstream headers among Authentication-Results ``values`` (top first)."""
    ours = norm_authserv_id(authserv_id)
    trusted = {norm_authserv_id(name) for name in trusted_ids} - {ours}
    block: list[ParsedAuthres] = []
    seen: set[str] = set()
    for value in values:
        parsed = parse_authres(value)
        name = norm_authserv_id(parsed.authserv_id) if parsed else ""
        if parsed is None or name not in trusted or name in seen:
            break
        seen.add(name)
        block.append(parsed)
    return tuple(block)


def _results(block: Iterable[ParsedAuthres], method: str) -> list[UpstreamResult]:
    """Every upstream ``method`` result, topmost (most recent) header first."""
    return [
        UpstreamResult(header.authserv_id, result)
        for header in block
        for result in header.results
        if result.method == method
    ]


def adopt(upstream: UpstreamResult) -> AuthResult:
    """The upstream result as one of ours: same status, reason naming where it came from,
    only well-formed property names (ours are written back into a header)."""
    result = upstream.result
    reason = f"{PREFIX} {upstream.authserv_id}"
    if result.reason:
        reason = f"{reason}: {result.reason}"
    props = {name: value for name, value in result.props.items() if is_property_name(name)}
    return AuthResult(result.method, result.result, reason, props)


def is_internal_client(client_ip: str | None) -> bool:
    """True for an address no Internet sender's server can have (an internal hop)."""
    return False if client_ip is None else _is_internal(client_ip)


@functools.lru_cache(maxsize=4096)
def _is_internal(client_ip: str) -> bool:
    """``is_internal_client`` of a text address (cached: a pure function of it)."""
    try:
        address = ip_address(client_ip.strip().removeprefix("IPv6:"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return any(address in net for net in INTERNAL_NETWORKS if net.version == address.version)


def _domain(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[2].rstrip(".").lower()


def spf_from_upstream(
    block: Sequence[ParsedAuthres], client_ip: str | None, mail_from: str | None
) -> tuple[UpstreamResult, ...]:
    """The upstream SPF results to use instead of our own check (MAIL FROM first, then
    HELO), or () when our own check stands. ``mail_from`` None means unknown."""
    if client_ip is not None and not is_internal_client(client_ip):
        return ()
    results = _results(block, "spf")
    mailfrom = next((r for r in results if "smtp.mailfrom" in r.result.props), None)
    if mailfrom is None or not _same_sender(mailfrom.result.props["smtp.mailfrom"], mail_from):
        return ()
    same_header = [r for r in results if r.authserv_id == mailfrom.authserv_id]
    helo = next((r for r in same_header if "smtp.helo" in r.result.props), None)
    return (mailfrom, helo) if helo is not None else (mailfrom,)


def _same_sender(upstream: str, mail_from: str | None) -> bool:
    if mail_from is None:
        return True
    if not mail_from.strip("<> "):  # null sender: RFC 7208 §2.4 checks postmaster@helo
        local = upstream.strip().strip("<>").rpartition("@")[0]
        return local.lower() in ("", "postmaster")
    return _domain(upstream) == _domain(mail_from) != ""


def _same_signature(ours: AuthResult, theirs: AuthResult) -> bool:
    def get(result: AuthResult, name: str) -> str:
        return result.props.get(name, "").strip()

    if (
        not get(ours, "header.d")
        or get(ours, "header.d").lower() != get(theirs, "header.d").lower()
    ):
        return False
    if get(ours, "header.s") != get(theirs, "header.s"):
        return False
    ours_b, theirs_b = get(ours, "header.b"), get(theirs, "header.b")
    if ours_b and theirs_b:
        shorter = min(len(ours_b), len(theirs_b))
        return ours_b[:shorter] == theirs_b[:shorter]
    return True


def dkim_from_upstream(
    own: Sequence[AuthResult], block: Sequence[ParsedAuthres]
) -> tuple[tuple[AuthResult, ...], tuple[UpstreamResult, ...]]:
    """Our DKIM results with each ``temperror`` replaced by the upstream result for the
    same signature when there is one; also returns what was taken from upstream."""
    upstream = _results(block, "dkim")
    out: list[AuthResult] = []
    taken: list[UpstreamResult] = []
    for result in own:
        match = None
        if result.result is AuthStatus.TEMPERROR:
            match = next((u for u in upstream if _same_signature(result, u.result)), None)
        if match is not None and match.result.result is not AuthStatus.TEMPERROR:
            taken.append(match)
            out.append(adopt(match))
        else:
            out.append(result)
    return tuple(out), tuple(taken)


def dmarc_from_upstream(
    own: DmarcResult, block: Sequence[ParsedAuthres]
) -> tuple[DmarcResult, UpstreamResult | None]:
    """Our DMARC result, or the upstream one for the same From domain when ours is
    ``temperror``."""
    if own.status is not AuthStatus.TEMPERROR:
        return own, None
    for upstream in _results(block, "dmarc"):
        props = upstream.result.props
        same = props.get("header.from", "").strip().rstrip(".").lower() == own.from_domain
        if same and upstream.result.result is not AuthStatus.TEMPERROR:
            adopted = adopt(upstream)
            policy = _policy(props.get("policy.dmarc", ""))
            result = DmarcResult(
                adopted.result, own.from_domain, adopted.reason, applied_policy=policy
            )
            return result, upstream
    return own, None


def _policy(text: str) -> Policy | None:
    try:
        return Policy(text.strip().lower())
    except ValueError:
        return None


def arc_from_upstream(
    own: ArcResult, block: Sequence[ParsedAuthres]
) -> tuple[ArcResult, UpstreamResult | None]:
    """Our ARC result, or the upstream one when ours is ``temperror``. An adopted result
    names no sealer, so it never triggers the trusted-sealer DMARC override."""
    if own.status is not AuthStatus.TEMPERROR:
        return own, None
    for upstream in _results(block, "arc"):
        if upstream.result.result is not AuthStatus.TEMPERROR:
            adopted = adopt(upstream)
            return ArcResult(adopted.result, 0, (), adopted.reason), upstream
    return own, None

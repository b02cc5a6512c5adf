"""SPF (RFC 7208) evaluation over the asynchronous ``milter.dns`` ``Resolver``.

Why not a library: pyspf (and spf-engine, which wraps it) is synchronous and brings its own
DNS layer, so it would block the event loop and bypass the shared cache, the per-message
DNS budget and our DnsError → temperror mapping; checkdmarc is a synchronous record
auditor, and the few asyncio packages on PyPI are young single-author projects. RFC 7208
evaluation is small, so it lives here, split as mox does: syntax and macros in
``milter.auth.spf_record`` (pure), evaluation here. Conformance: tests/auth/test_spf_suite.py
runs the RFC 7208 test suite through a real DNS server.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass, replace

from milter.auth.spf_record import (
    DNS_MECHANISMS,
    IPAddress,
    MacroContext,
    Mechanism,
    SpfRecord,
    SpfSyntaxError,
    expand,
    expand_domain,
    is_spf_record,
    parse_record,
    uses_macro,
)
from milter.dns.resolver import DnsError, Resolver
from milter.model.auth import AuthResult, AuthStatus

__all__ = ["SpfReport", "SpfResult", "check_host", "check_spf", "valid_domain"]

MAX_DNS_TERMS = 10  # §4.6.4 item 1
MAX_VOID_LOOKUPS = 2  # §4.6.4 last paragraph
MAX_NAMES = 10  # §4.6.4 items 2 and 3: address lookups per MX / PTR evaluation


@dataclass(frozen=True, slots=True)
class SpfResult:
    """Outcome of ``check_host`` for one identity ("mailfrom" or "helo")."""

    status: AuthStatus
    domain: str
    sender: str
    identity: str = "mailfrom"
    explanation: str = ""  # §6.2 text from the exp= modifier, on "fail" only
    reason: str = ""  # why: the matching directive or the error
    mechanism: str = ""

    def to_auth_result(self) -> AuthResult:
        """RFC 8601 view: method "spf", property smtp.mailfrom or smtp.helo."""
        if self.identity == "helo":
            props = {"smtp.helo": self.domain}
        else:
            props = {"smtp.mailfrom": self.sender}
        return AuthResult("spf", self.status, self.reason, props)


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


def valid_domain(domain: str) -> bool:
    """§4.3: a fully qualified name: 2+ labels of 1..63 octets, at most 253 in all."""
    name = domain[:-1] if domain.endswith(".") else domain
    if not name or len(name) > 253 or name.startswith("["):
        return False
    labels = name.split(".")
    return len(labels) >= 2 and all(0 < len(label) <= 63 for label in labels)


def _queryable(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(0 < len(label) <= 63 for label in labels)


def _normalize_ip(ip: str | IPAddress) -> IPAddress:
    return _parse_ip(ip) if isinstance(ip, str) else _unmapped(ip)


@functools.lru_cache(maxsize=4096)
def _parse_ip(ip: str) -> IPAddress:
    """The client address: a pure function of the text, and the same servers send message
    after message (ipaddress parses in Python, ~20 µs)."""
    return _unmapped(ipaddress.ip_address(ip))


def _unmapped(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # an IPv4-mapped client is an IPv4 client
    return addr


def _normalize_sender(sender: str, domain: str) -> str:
    local, at, sdomain = sender.rpartition("@")
    if not at:
        sdomain = sender or domain
    return f"{local or 'postmaster'}@{sdomain}"  # §4.3: empty local-part → postmaster


async def check_host(
    ip: str | IPAddress,
    domain: str,
    sender: str,
    helo: str,
    resolver: Resolver,
    *,
    identity: str = "mailfrom",
    receiver: str = "unknown",
) -> SpfResult:
    """The check_host() function of RFC 7208 §4 for client ``ip`` and ``domain``.

    ``sender`` is the MAIL FROM address (or "postmaster@<helo>" for the HELO identity);
    ``receiver`` is this host's name for %{r}. DNS errors give ``temperror``.
    """
    client = _normalize_ip(ip)
    domain = domain.rstrip(".").lower()
    sender = _normalize_sender(sender, domain)
    if not valid_domain(domain):
        reason = f"{domain!r} is not a valid domain name (§4.3)"
        return SpfResult(AuthStatus.NONE, domain, sender, identity, reason=reason)
    ctx = MacroContext(sender, domain, client, helo, receiver=receiver, timestamp=int(time.time()))
    evaluation = _Evaluation(resolver, client)
    try:
        status, explanation, mech = await evaluation.check(domain, ctx)
    except _PermError as exc:
        return SpfResult(AuthStatus.PERMERROR, domain, sender, identity, reason=str(exc))
    except _TempError as exc:
        return SpfResult(AuthStatus.TEMPERROR, domain, sender, identity, reason=str(exc))
    reason = f"matched {mech}" if mech else f"{status} (no directive matched)"
    return SpfResult(status, domain, sender, identity, explanation, reason, mech)


class _Evaluation:
    """State of one check_host() call: the shared DNS term and void lookup counters."""

    def __init__(self, resolver: Resolver, ip: IPAddress) -> None:
        self.resolver = resolver
        self.ip = ip
        self.terms = 0
        self.voids = 0

    def _count_term(self) -> None:
        self.terms += 1
        if self.terms > MAX_DNS_TERMS:
            raise _PermError(f"more than {MAX_DNS_TERMS} DNS-querying terms (§4.6.4)")

    def _void(self) -> None:
        self.voids += 1
        if self.voids > MAX_VOID_LOOKUPS:
            raise _PermError(f"more than {MAX_VOID_LOOKUPS} void lookups (§4.6.4)")

    async def _query(self, name: str, rdtype: str) -> tuple[str, ...]:
        """Records, or () for NXDOMAIN/NODATA; DNS errors become temperror (§5)."""
        if not _queryable(name):
            # A target that cannot be put in a query (empty or >63-octet label, RFC 1035
            # §2.3.4) is treated as non-existent, like §4.3 does for the initial domain.
            return ()
        try:
            answer = await self.resolver.query(name, rdtype)
        except DnsError as exc:
            raise _TempError(f"DNS error for {name}/{rdtype}: {exc}") from exc
        return answer.records

    async def record(self, domain: str) -> SpfRecord | None:
        """§4.4 record lookup and §4.5 selection."""
        found = [r for r in await self._query(domain, "TXT") if is_spf_record(r)]
        if not found:
            return None
        if len(found) > 1:
            raise _PermError(f"{domain} publishes {len(found)} SPF records (§4.5)")
        try:
            return parse_record(found[0])
        except SpfSyntaxError as exc:
            raise _PermError(f"{domain}: {exc}") from exc

    async def check(self, domain: str, ctx: MacroContext) -> tuple[AuthStatus, str, str]:
        """Evaluate ``domain``'s record (§4.6); returns (result, explanation, directive)."""
        record = await self.record(domain)
        if record is None:
            return AuthStatus.NONE, "", ""
        if ctx.domain != domain:  # an include or redirect target
            ctx = replace(ctx, domain=domain)
        for term in record.mechanisms:
            if term.name in DNS_MECHANISMS:
                self._count_term()
            if await self._matches(term, ctx):
                status = AuthStatus(term.result)
                explanation = ""
                if status is AuthStatus.FAIL and record.exp is not None:
                    explanation = await self._explain(record.exp, ctx)
                return status, explanation, term.text
        if record.redirect is not None and not any(m.name == "all" for m in record.mechanisms):
            self._count_term()  # §6.1: the record of the target replaces this one
            target = await self._target(record.redirect, ctx)
            status, explanation, mech = await self.check(target, ctx)
            if status is AuthStatus.NONE:
                raise _PermError(f"redirect={target} has no SPF record (§6.1)")
            return status, explanation, mech
        return AuthStatus.NEUTRAL, "", ""  # §4.7 default result

    async def _target(self, spec: str | None, ctx: MacroContext) -> str:
        if spec is None:
            return ctx.domain
        if uses_macro(spec, "p"):
            ctx = replace(ctx, validated=await self._validated_name(ctx.domain))
        try:
            return expand_domain(spec, ctx).lower()
        except SpfSyntaxError as exc:
            raise _PermError(str(exc)) from exc

    async def _matches(self, mech: Mechanism, ctx: MacroContext) -> bool:
        name = mech.name
        if name == "all":  # §5.1
            return True
        if name in ("ip4", "ip6"):  # §5.6
            assert mech.network is not None
            return mech.network.version == self.ip.version and self.ip in mech.network
        target = await self._target(mech.domain_spec, ctx)
        if name == "include":  # §5.2
            status, _, _ = await self.check(target, ctx)
            if status is AuthStatus.NONE:
                raise _PermError(f"include:{target} has no SPF record (§5.2)")
            return status is AuthStatus.PASS
        if name == "a":  # §5.3
            return self._in_any(await self._addresses(target, count_void=True), mech)
        if name == "mx":  # §5.4
            return await self._mx(target, mech)
        if name == "ptr":  # §5.5
            names = await self._validated_names(count_void=True)
            return any(n == target or n.endswith("." + target) for n in names)
        if name == "exists":  # §5.7: always an A query
            records = await self._query(target, "A")
            if not records:
                self._void()
            return bool(records)
        raise _PermError(f"unknown mechanism {name}")

    def _in_any(self, addresses: tuple[str, ...], mech: Mechanism) -> bool:
        """Is the client in one of ``addresses`` widened by the mechanism's CIDR (§5.6)?"""
        prefix = mech.cidr4 if self.ip.version == 4 else mech.cidr6
        for text in addresses:
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                continue
            if addr.version != self.ip.version:
                continue
            bits = addr.max_prefixlen if prefix is None else prefix
            if self.ip in ipaddress.ip_network(f"{addr}/{bits}", strict=False):
                return True
        return False

    async def _addresses(self, name: str, *, count_void: bool) -> tuple[str, ...]:
        records = await self._query(name, "A" if self.ip.version == 4 else "AAAA")
        if not records and count_void:
            self._void()
        return records

    async def _mx(self, target: str, mech: Mechanism) -> bool:
        exchanges = []
        for rec in await self._query(target, "MX"):
            _, _, exchange = rec.partition(" ")
            exchanges.append(exchange.strip())
        if not exchanges:
            self._void()
            return False
        if len(exchanges) > MAX_NAMES:  # §4.6.4 item 2
            raise _PermError(f"{target} has more than {MAX_NAMES} MX records (§4.6.4)")
        for exchange in exchanges:
            if exchange and self._in_any(await self._addresses(exchange, count_void=False), mech):
                return True
        return False

    async def _validated_names(self, *, count_void: bool) -> list[str]:
        """§5.5: PTR names whose A/AAAA records include the client IP (first 10 only)."""
        try:
            answer = await self.resolver.query(self.ip.reverse_pointer, "PTR")
        except DnsError:
            return []  # §5.5: a DNS error on the PTR lookup means no match
        if not answer.records and count_void:
            self._void()
        validated = []
        for name in answer.records[:MAX_NAMES]:  # §4.6.4 item 3: ignore the rest
            try:
                addresses = await self._addresses(name, count_void=False)
            except _TempError:
                continue  # §5.5: skip names whose address lookup fails
            if any(ipaddress.ip_address(a) == self.ip for a in addresses):
                validated.append(name.lower())
        return validated

    async def _validated_name(self, domain: str) -> str:
        """%{p} (§7.3): the domain itself, else a subdomain of it, else any, else unknown."""
        names = await self._validated_names(count_void=False)
        for good in (
            [n for n in names if n == domain],
            [n for n in names if n.endswith("." + domain)],
            names,
        ):
            if good:
                return good[0]
        return "unknown"

    async def _explain(self, spec: str, ctx: MacroContext) -> str:
        """§6.2: the expanded TXT of exp=; any problem just means no explanation."""
        try:
            target = await self._target(spec, ctx)
            if not valid_domain(target):
                return ""
            records = await self._query(target, "TXT")
            if len(records) != 1 or not records[0].isascii():
                return ""
            text = records[0]
            if uses_macro(text, "p"):
                ctx = replace(ctx, validated=await self._validated_name(ctx.domain))
            return expand(text, ctx, exp=True)
        except (_PermError, _TempError, SpfSyntaxError):
            return ""


@dataclass(frozen=True, slots=True)
class SpfReport:
    """Both SPF identities of one SMTP transaction (RFC 7208 §2.3, §2.4)."""

    helo: SpfResult | None  # None when the HELO name is not a domain (e.g. a literal)
    mailfrom: SpfResult

    def auth_results(self) -> list[AuthResult]:
        """RFC 8601 results, MAIL FROM first."""
        out = [self.mailfrom.to_auth_result()]
        if self.helo is not None and self.helo is not self.mailfrom:
            out.append(self.helo.to_auth_result())
        return out


async def check_spf(
    ip: str | IPAddress,
    mail_from: str,
    helo: str,
    resolver: Resolver,
    *,
    receiver: str = "unknown",
) -> SpfReport:
    """Check the HELO identity (§2.3) and the MAIL FROM identity (§2.4).

    With a null reverse-path ("" or "<>") the MAIL FROM identity is postmaster@<helo>,
    which is the HELO check itself, so it is evaluated once.
    """
    helo_name = helo.strip().rstrip(".").lower()
    helo_result: SpfResult | None = None
    if valid_domain(helo_name):
        helo_result = await check_host(
            ip, helo_name, f"postmaster@{helo_name}", helo, resolver,
            identity="helo", receiver=receiver,
        )  # fmt: skip
    address = mail_from.strip().strip("<>")
    if not address:
        if helo_result is not None:
            return SpfReport(helo_result, replace(helo_result, identity="mailfrom"))
        address = f"postmaster@{helo_name}"
    domain = address.rpartition("@")[2]
    mailfrom = await check_host(ip, domain, address, helo, resolver, receiver=receiver)
    return SpfReport(helo_result, mailfrom)

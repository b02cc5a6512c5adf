"""``DnsResolver``: the production ``Resolver`` on dnspython's asyncio stub resolver.

One instance is shared by all messages so that its ``DnsCache`` serves them all. UDP
answers with the TC bit are retried over TCP by dnspython (RFC 7766 §5).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from milter.dns.cache import DnsCache
from milter.dns.resolver import DnsAnswer, DnsError, DnsServFail, DnsTimeout
from milter.ops.metrics import record_dns_cache_hit, record_dns_query

__all__ = ["DnsResolver", "format_rdata", "normalize_name", "parse_nameserver"]


def parse_nameserver(spec: str) -> tuple[str, int]:
    """Split "HOST[:PORT]" ("192.0.2.1", "192.0.2.1:5353", "::1", "[::1]:5353")."""
    spec = spec.strip()
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep:
            raise ValueError(f"bad nameserver {spec!r}")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    else:
        host, port = spec, 53
    ipaddress.ip_address(host)  # dnspython wants addresses, not names
    if not 0 < port < 65536:
        raise ValueError(f"bad port in nameserver {spec!r}")
    return host, port


def normalize_name(name: str) -> str:
    """Lower-case a domain name and drop its final dot (the cache key form)."""
    return name.strip().rstrip(".").lower()


def format_rdata(rdtype: str, rdata: object) -> str:
    """One record in the text form documented in ``milter.dns.resolver``."""
    if rdtype in ("A", "AAAA"):
        return str(getattr(rdata, "address", rdata))
    if rdtype == "MX":
        return f"{rdata.preference} {_name_text(rdata.exchange)}"  # type: ignore[attr-defined]
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if rdtype in ("PTR", "CNAME", "NS"):
        return _name_text(rdata.target)  # type: ignore[attr-defined]
    return str(rdata.to_text())  # type: ignore[attr-defined]


def _name_text(name: dns.name.Name) -> str:
    # The root name (null MX, RFC 7505) becomes the empty string.
    return "" if name == dns.name.root else name.to_text(omit_final_dot=True).lower()


class DnsResolver:
    """Asynchronous caching stub resolver; raises only ``DnsError`` subclasses.

    ``nameservers``: "HOST[:PORT]" strings; None reads /etc/resolv.conf.
    ``timeout``: seconds allowed for one query, retries and TCP fallback included.
    ``cache``: defaults to a fresh ``DnsCache()``; pass one to share or tune it.
    Without nameservers and without a readable /etc/resolv.conf the constructor raises
    ``dns.resolver.NoResolverConfiguration`` (a configuration error, not a lookup one).
    """

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        timeout: float = 3.0,
        cache: DnsCache | None = None,
    ) -> None:
        if nameservers is None:
            self._resolver = dns.asyncresolver.Resolver(configure=True)
        else:
            if not nameservers:
                raise ValueError("at least one nameserver is needed")
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_nameserver(ns)) for ns in nameservers
            ]
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout
        self._resolver.cache = None  # ours below knows about negative-TTL caps
        self.timeout = timeout
        self.cache = cache if cache is not None else DnsCache()

    @property
    def nameservers(self) -> list[str]:
        """The servers in use, as "HOST:PORT"."""
        out = []
        for ns in self._resolver.nameservers:
            if isinstance(ns, dns.nameserver.Nameserver):
                out.append(f"{ns.answer_nameserver()}:{ns.answer_port()}")
            else:
                out.append(f"{ns}:{self._resolver.port}")
        return out

    def cached(self, name: str, rdtype: str) -> DnsAnswer | None:
        """The fresh cached answer for ``name``/``rdtype``, or None (no I/O)."""
        answer = self.cache.get(normalize_name(name), rdtype.upper())
        if answer is not None:
            record_dns_cache_hit()
        return answer

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look up ``rdtype`` records of ``name``, from the cache when fresh."""
        cached = self.cached(name, rdtype)
        if cached is not None:
            return cached
        key = normalize_name(name)
        rdtype = rdtype.upper()
        try:
            answer, ttl = await self._lookup(key, rdtype)
        except DnsTimeout:
            record_dns_query("timeout")
            raise
        except DnsError:
            record_dns_query("error")
            raise
        record_dns_query("nxdomain" if answer.nxdomain else "answer")
        self.cache.put(answer, ttl)
        return answer

    async def _lookup(self, name: str, rdtype: str) -> tuple[DnsAnswer, float]:
        try:
            qname = dns.name.from_text(name or ".")
            qtype = dns.rdatatype.from_text(rdtype)
            ans = await self._resolver.resolve(qname, qtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            return DnsAnswer(name, rdtype, (), nxdomain=True), _negative_ttl(exc)
        except dns.exception.Timeout as exc:
            raise DnsTimeout(f"{name}/{rdtype}: timed out after {self.timeout:g}s") from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsServFail(f"{name}/{rdtype}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise DnsError(f"{name}/{rdtype}: {exc}") from exc
        except (OSError, ValueError, EOFError) as exc:
            raise DnsError(f"{name}/{rdtype}: {exc!r}") from exc
        records: tuple[str, ...] = ()
        if ans.rrset is not None:
            records = tuple(format_rdata(rdtype, rd) for rd in ans.rrset)
        ttl = float(ans.chaining_result.minimum_ttl)
        return DnsAnswer(name, rdtype, records), ttl


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> float:
    """RFC 2308 §5: the NXDOMAIN answer lives min(SOA TTL, SOA MINIMUM); no SOA, no cache."""
    try:
        responses = exc.responses()  # type: ignore[no-untyped-call]
    except (AttributeError, KeyError):
        return 0.0
    for response in responses.values():
        if isinstance(response, dns.message.QueryMessage):
            try:
                return float(response.resolve_chaining().minimum_ttl)
            except dns.exception.DNSException:
                return 0.0
    return 0.0

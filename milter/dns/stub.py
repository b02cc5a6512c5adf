"""``DnsResolver``: the production ``Resolver`` on dnspython's asyncio stub resolver.

One instance is shared by all messages so that its ``DnsCache`` serves them all. UDP
answers with the TC bit are retried over TCP by dnspython (RFC 7766 §5). Queries to a
loopback server share one kept UDP socket (``milter.dns.udp``).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence

import dns.asyncbackend
import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from milter.dns.cache import DnsCache
from milter.dns.resolver import DnsAnswer, DnsError, DnsServFail, DnsTimeout
from milter.dns.udp import KeptSocketNameserver, Outcome
from milter.dns.wire import QTYPES, WireAnswer, question_bytes
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
            specs = [
                (ns, self._resolver.nameserver_ports.get(ns, self._resolver.port))
                for ns in self._resolver.nameservers
                if isinstance(ns, str)
            ]
            if len(specs) == len(self._resolver.nameservers):  # addresses, as resolv.conf has
                self._resolver.nameservers = [KeptSocketNameserver.for_address(*s) for s in specs]
        else:
            if not nameservers:
                raise ValueError("at least one nameserver is needed")
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [
                KeptSocketNameserver.for_address(*parse_nameserver(ns)) for ns in nameservers
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

    def close(self) -> None:
        """Close the kept UDP sockets (a later query opens them again)."""
        for ns in self._resolver.nameservers:
            if isinstance(ns, KeptSocketNameserver):
                ns.close()

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
        resolver = self._resolver
        first = resolver.nameservers[0] if resolver.nameservers else None
        qtype = QTYPES.get(rdtype)
        if (
            isinstance(first, KeptSocketNameserver)
            and qtype is not None
            and _sends_plain_queries(resolver)
            and first.can_ask()
        ):
            question = question_bytes(name, qtype)
            if question is not None:
                return await self._ask_first(first, name, rdtype, question)
        return await self._resolve(name, rdtype, None)

    async def _ask_first(
        self, first: KeptSocketNameserver, name: str, rdtype: str, question: bytes
    ) -> tuple[DnsAnswer, float]:
        """The plain query to the first server; a plain answer is the result, anything
        else (a timeout, an error, another response) goes on through dnspython's resolver
        logic as if dnspython had sent the query itself."""
        start = time.time()
        outcome: Outcome | Exception
        resolver = self._resolver
        edns = (resolver.edns, resolver.ednsflags, resolver.payload) if resolver.edns >= 0 else None
        try:
            outcome = await first.ask(name, question, self.timeout, edns)
        except Exception as exc:  # noqa: BLE001 - handed to dnspython's query_result
            outcome = exc
        if isinstance(outcome, WireAnswer):
            return DnsAnswer(name, rdtype, outcome.records, nxdomain=outcome.nxdomain), outcome.ttl
        return await self._resolve(name, rdtype, (first, outcome, start))

    async def _resolve(
        self, name: str, rdtype: str, seed: tuple[object, Outcome | Exception, float] | None
    ) -> tuple[DnsAnswer, float]:
        try:
            qname = dns.name.from_text(name or ".")
            qtype = dns.rdatatype.from_text(rdtype)
            if seed is None:
                ans = await self._resolver.resolve(
                    qname, qtype, search=False, raise_on_no_answer=False
                )
            else:
                ans = await self._continue(qname, qtype, *seed)
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

    async def _continue(
        self,
        qname: dns.name.Name,
        qtype: dns.rdatatype.RdataType,
        first: object,
        outcome: Outcome | Exception,
        start: float,
    ) -> dns.resolver.Answer:
        """dnspython's ``asyncresolver.Resolver.resolve`` (2.x) with the first attempt's
        outcome already known: the same loop over its ``_Resolution`` state machine, which
        keeps every decision dnspython's (SERVFAIL, truncation → TCP, timeouts, NXDOMAIN,
        the next server). Written out here because dnspython has no way to hand it a
        response received elsewhere."""
        resolver = self._resolver
        resolution = dns.resolver._Resolution(
            resolver, qname, qtype, dns.rdataclass.IN, False, False, False
        )
        backend = dns.asyncbackend.get_default_backend()
        seeded: Outcome | Exception | None = outcome
        while True:
            request, answer = resolution.next_request()
            if answer is not None:
                return answer
            assert request is not None
            done = False
            while not done:
                nameserver, tcp, backoff = resolution.next_nameserver()
                if backoff:
                    await backend.sleep(backoff)  # type: ignore[no-untyped-call]
                request.set_random_id()  # type: ignore[no-untyped-call]
                response: dns.message.Message | None = None
                error: Exception | None = None
                if seeded is not None and nameserver is first and not tcp:
                    if isinstance(seeded, Exception):
                        error = seeded
                    else:
                        assert isinstance(seeded, dns.message.Message)
                        response = seeded
                    seeded = None
                else:
                    seeded = None
                    timeout = resolver._compute_timeout(start, None, resolution.errors)
                    try:
                        response = await nameserver.async_query(
                            request,
                            timeout=timeout,
                            source=None,
                            source_port=0,
                            max_size=tcp,
                            backend=backend,
                        )
                    except Exception as ex:  # noqa: BLE001 - dnspython's own handling
                        error = ex
                answer, done = resolution.query_result(response, error)
                if answer is not None:
                    return answer


def _sends_plain_queries(resolver: dns.asyncresolver.Resolver) -> bool:
    """Whether dnspython would send the query ``milter.dns.wire`` writes, to the first server
    first: EDNS without options or none (resolv.conf ``options edns0`` is fine), no other
    flags than RD, no TSIG, no ``rotate``. Otherwise every lookup goes through dnspython."""
    return (
        not resolver.ednsoptions
        and resolver.flags is None
        and resolver.keyname is None
        and not resolver.rotate
    )


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

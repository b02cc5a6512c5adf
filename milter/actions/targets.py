"""Which links are suspicious: the links carried by the findings (``Finding.link``).

Only these links are rewritten; every other link (the brand's real site, trackers of a
newsletter, the unsubscribe link) stays exactly as it was — unless the policy asks for
every link of a message that failed to prove a brand (:data:`ALL_LINKS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from milter.model.findings import Finding, LinkScope
from milter.text.idna import to_ascii
from milter.text.url import host_of

EVIDENCE_URL_LIMIT = 300  # LinkTargets.of(urls=…) given cut URLs matches them as prefixes
_TRAILING = ".,;:!?)]}>'\"»…*_|"


def _norm_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _norm_url(url: str) -> str:
    return url.strip().rstrip(_TRAILING)


def _url_key(url: str) -> str:
    """Exact URLs lose trailing punctuation; URLs cut at the evidence limit keep it."""
    return url.strip() if len(url) >= EVIDENCE_URL_LIMIT else _norm_url(url)


@dataclass(frozen=True, slots=True)
class LinkTargets:
    """Hosts (any link to them) and exact URLs (that link only) to neutralise.

    A URL named in evidence is matched exactly, or as a prefix when the evidence was cut
    at :data:`EVIDENCE_URL_LIMIT` characters. ``keep_prefix`` protects links that already
    point to our own warning page, so a second pass never wraps them again.
    """

    hosts: frozenset[str] = frozenset()
    urls: frozenset[str] = frozenset()
    url_prefixes: frozenset[str] = frozenset()
    keep_prefix: str = ""
    destinations: tuple[tuple[str, str], ...] = ()
    every_link: bool = False

    @classmethod
    def of(
        cls,
        hosts: Iterable[str] = (),
        urls: Iterable[str] = (),
        destinations: Iterable[tuple[str, str]] = (),
    ) -> LinkTargets:
        """Normalised targets (hosts lower-case without trailing dot, URLs trimmed).

        ``destinations`` pairs a URL with the host it really leads to (the target of a
        redirector); those URLs are targets too.
        """
        pairs = [(u, _norm_host(h)) for u, h in destinations]
        exact: set[str] = set()
        prefixes: set[str] = set()
        for url in (*urls, *(u for u, _ in pairs)):
            if _url_key(url):
                (prefixes if len(url) >= EVIDENCE_URL_LIMIT else exact).add(_url_key(url))
        names = (h for h in map(_norm_host, hosts) if h and "[" not in h)  # x[.]fr: defanged
        known = tuple((_url_key(u), h) for u, h in pairs if _url_key(u) and h and "[" not in h)
        return cls(frozenset(names), frozenset(exact), frozenset(prefixes), "", known)

    def __bool__(self) -> bool:
        return bool(self.hosts or self.urls or self.url_prefixes or self.every_link)

    def keeping(self, prefix: str) -> LinkTargets:
        """The same targets, never matching URLs that start with ``prefix``."""
        return LinkTargets(
            self.hosts, self.urls, self.url_prefixes, prefix, self.destinations, self.every_link
        )

    def with_every_link(self) -> LinkTargets:
        """The same targets, plus every other link of the message."""
        return LinkTargets(
            self.hosts, self.urls, self.url_prefixes, self.keep_prefix, self.destinations, True
        )

    def destination(self, url: str) -> str:
        """The host ``url`` really leads to: from the evidence, else its own host."""
        url = url.strip()
        for key, host in self.destinations:
            if _norm_url(url) == key or (len(key) >= EVIDENCE_URL_LIMIT and url.startswith(key)):
                return host
        return host_of(url)

    def host_matches(self, host: str) -> bool:
        """True when ``host`` (Unicode or ASCII form) is a target host."""
        host = _norm_host(host)
        if not host:
            return False
        if host in self.hosts:
            return True
        return to_ascii(host) in self.hosts

    def url_matches(self, url: str) -> bool:
        """True when ``url`` (as written, HTML entities already decoded) must be neutralised."""
        url = url.strip()
        if not url or (self.keep_prefix and url.startswith(self.keep_prefix)):
            return False
        if self.every_link:
            return True
        if self.host_matches(host_of(url)):
            return True
        if _norm_url(url) in self.urls:
            return True
        return any(url.startswith(prefix) for prefix in self.url_prefixes)


def targets_from_findings(findings: Iterable[Finding]) -> LinkTargets:
    """The suspicious links the findings carry (``Finding.link``).

    A link of scope ``host`` makes every link to its host a target and records where its
    own URL leads (a redirector's URL whose final host is the lookalike); a link of scope
    ``url`` is that URL only.
    """
    hosts: list[str] = []
    urls: list[str] = []
    destinations: list[tuple[str, str]] = []
    for finding in findings:
        link = finding.link
        if link is None:
            continue
        if link.scope is LinkScope.HOST:
            hosts += [link.host, link.host_ascii]
            destinations.append((link.url, link.host))
        else:
            urls.append(link.url)
    return LinkTargets.of(hosts, urls, destinations)

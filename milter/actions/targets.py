"""Which links are suspicious: the hosts and URLs named in the links check's findings.

Only these links are rewritten; every other link (the brand's real site, trackers of a
newsletter, the unsubscribe link) stays exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from milter.model.findings import Finding
from milter.text.idna import to_ascii
from milter.text.url import host_of

LOOKALIKE = "LINK_LOOKALIKE"  # evidence: url, host, host_ascii (url may be a redirector's)
MISMATCH = "LINK_TEXT_MISMATCH"  # evidence: href, real_host (shown is the official host)
TRICK = "LINK_TRICK"  # evidence: url
EVIDENCE_URL_LIMIT = 300  # the links check keeps at most this many characters of a URL
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
        return bool(self.hosts or self.urls or self.url_prefixes)

    def keeping(self, prefix: str) -> LinkTargets:
        """The same targets, never matching URLs that start with ``prefix``."""
        return LinkTargets(self.hosts, self.urls, self.url_prefixes, prefix, self.destinations)

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
        if self.host_matches(host_of(url)):
            return True
        if _norm_url(url) in self.urls:
            return True
        return any(url.startswith(prefix) for prefix in self.url_prefixes)


def targets_from_findings(findings: Iterable[Finding]) -> LinkTargets:
    """The suspicious links named by LINK_LOOKALIKE, LINK_TEXT_MISMATCH and LINK_TRICK.

    A lookalike behind a redirector names the redirector URL (``url``) and the final host
    (``host``): both are targets, the redirector's other links are not.
    """
    hosts: list[str] = []
    urls: list[str] = []
    destinations: list[tuple[str, str]] = []
    for finding in findings:
        ev = finding.evidence
        if finding.code == LOOKALIKE:
            hosts += [ev.get("host", ""), ev.get("host_ascii", "")]
            destinations.append((ev.get("url", ""), ev.get("host", "")))
        elif finding.code == MISMATCH:
            hosts += [ev.get("real_host", ""), ev.get("real_host_ascii", "")]
            destinations.append((ev.get("href", ""), ev.get("real_host", "")))
        elif finding.code == TRICK:
            urls.append(ev.get("url", ""))
    return LinkTargets.of(hosts, urls, destinations)

"""Prometheus metrics (prometheus_client), added up over every worker process.

``tocsin serve`` calls `enable_multiprocess` before any metric exists, so each worker
writes its samples to files in one directory and the ``/metrics`` endpoint
(`milter.ops.http`) sums them (prometheus_client's multi-process mode). Without it
(tests, ``tocsin scan``) the metrics live in the process. The metrics are created on
first use, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
NONE = "none"
# scan time: most messages take milliseconds; DNS-bound ones seconds; the deadline ~60 s
SCAN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def enable_multiprocess(directory: Path) -> None:
    """Share metrics between processes through ``directory`` (emptied: a fresh start)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    from prometheus_client import values

    # metrics made from now on write to the files (prometheus_client has no stubs here)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> Path | None:
    """The shared directory, when multi-process mode is on."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


@dataclass(frozen=True, slots=True)
class _Metrics:
    messages: Counter
    findings: Counter
    scan_seconds: Histogram
    failures: Counter
    dns_queries: Counter
    dns_cache_hits: Counter
    quarantine_writes: Counter
    policy_reloads: Counter
    policy_info: Gauge
    connections: Counter
    connections_open: Gauge
    connections_refused: Counter
    limit_hits: Counter
    worker_restarts: Counter


@functools.cache
def _metrics() -> _Metrics:
    from prometheus_client import Counter, Gauge, Histogram

    return _Metrics(
        messages=Counter(
            "tocsin_messages",
            "Messages by action, verdict, would-be verdict (monitor mode) and claimed brand",
            ["action", "verdict", "would", "brand"],
        ),
        findings=Counter("tocsin_findings", "Findings by code", ["code"]),
        scan_seconds=Histogram(
            "tocsin_scan_seconds", "Time from complete message to answer", buckets=SCAN_BUCKETS
        ),
        failures=Counter(
            "tocsin_message_failures", "Messages Tocsin could not finish its normal way"
        ),
        dns_queries=Counter(
            "tocsin_dns_queries",
            "DNS queries sent, by result (answer, nxdomain, timeout, error)",
            ["result"],
        ),
        dns_cache_hits=Counter("tocsin_dns_cache_hits", "DNS answers served from the cache"),
        quarantine_writes=Counter(
            "tocsin_quarantine_writes",
            "Quarantine store writes, by result (ok, failed)",
            ["result"],
        ),
        policy_reloads=Counter(
            "tocsin_policy_reloads", "Policy reloads, by result (ok, refused)", ["result"]
        ),
        policy_info=Gauge(
            "tocsin_policy_info",
            "1 for the policy each worker runs (digest of the effective policy)",
            ["digest"],
            multiprocess_mode="liveall",
        ),
        connections=Counter(
            "tocsin_connections", "Connections accepted, by front-end", ["frontend"]
        ),
        connections_open=Gauge(
            "tocsin_connections_open",
            "Connections open now, by front-end",
            ["frontend"],
            multiprocess_mode="livesum",
        ),
        connections_refused=Counter(
            "tocsin_connections_refused",
            "Connections or sessions refused, by front-end and reason "
            "(max_connections, per_client, shutting_down)",
            ["frontend", "reason"],
        ),
        limit_hits=Counter(
            "tocsin_limit_hits",
            "Messages that went past a scanning limit, by limit (headers, depth, parts, "
            "text, links, work, size)",
            ["limit"],
        ),
        worker_restarts=Counter(
            "tocsin_worker_restarts",
            "Workers replaced by the supervisor, by reason (stalled: event loop stuck past "
            "worker_stall_seconds, killed; exited: died on its own)",
            ["reason"],
        ),
    )


def record_message(
    *,
    action: str,
    verdict: str | None,
    would: str | None,
    brand: str | None,
    codes: Iterable[str],
    seconds: float,
    failed: bool,
    limits: Iterable[str] = (),
) -> None:
    """Count one finished message (``limits``: the limits it went past)."""
    m = _metrics()
    _message_counter(action, verdict or NONE, would or NONE, brand or NONE).inc()
    for code in set(codes):
        _finding_counter(code).inc()
    for limit in set(limits):
        m.limit_hits.labels(limit).inc()
    m.scan_seconds.observe(seconds)
    if failed:
        m.failures.inc()


def record_dns_query(result: str) -> None:
    """One query sent to a name server: answer, nxdomain, timeout or error."""
    _metrics().dns_queries.labels(result).inc()


def record_dns_cache_hit() -> None:
    """One answer served from the cache."""
    _metrics().dns_cache_hits.inc()


def record_quarantine_write(*, ok: bool) -> None:
    """One attempt to store a message in Tocsin's quarantine."""
    _metrics().quarantine_writes.labels("ok" if ok else "failed").inc()


def policy_digest(document: Any) -> str:
    """A short digest of the effective policy (a pydantic model): the policy version."""
    return hashlib.sha256(document.model_dump_json().encode()).hexdigest()[:12]


_current_digest: list[str] = []


def record_policy(digest: str, *, reloaded: bool | None = None) -> None:
    """This worker now runs the policy ``digest``; ``reloaded`` counts a reload attempt."""
    m = _metrics()
    if reloaded is not None:
        m.policy_reloads.labels("ok" if reloaded else "refused").inc()
    if _current_digest and _current_digest[0] != digest:
        m.policy_info.labels(_current_digest[0]).set(0)
    m.policy_info.labels(digest).set(1)
    _current_digest[:] = [digest]


# Children of labelled metrics looked up once per label set (``labels()`` takes a lock
# and builds its key on every call; these run for every connection and message).


@functools.lru_cache(maxsize=4096)
def _message_counter(action: str, verdict: str, would: str, brand: str) -> Any:
    return _metrics().messages.labels(action, verdict, would, brand)


@functools.lru_cache(maxsize=4096)
def _finding_counter(code: str) -> Any:
    return _metrics().findings.labels(code)


@functools.cache
def _connection_metrics(frontend: str) -> tuple[Any, Any]:
    m = _metrics()
    return m.connections.labels(frontend), m.connections_open.labels(frontend)


def connection_opened(frontend: str) -> None:
    """A front-end accepted a connection."""
    accepted, open_now = _connection_metrics(frontend)
    accepted.inc()
    open_now.inc()


def connection_closed(frontend: str) -> None:
    """A front-end connection ended."""
    _connection_metrics(frontend)[1].dec()


def connection_refused(frontend: str, reason: str) -> None:
    """A front-end refused a connection (or an MTA session) with a 4xx."""
    _metrics().connections_refused.labels(frontend, reason).inc()


def worker_restarted(reason: str) -> None:
    """The supervisor replaces a worker: ``stalled`` (killed) or ``exited``."""
    _metrics().worker_restarts.labels(reason).inc()


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the totals)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """What ``/metrics`` shows: every worker's samples in multi-process mode."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected, path=str(directory))  # type: ignore[no-untyped-call]
    return collected

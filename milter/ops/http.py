"""The metrics and health endpoint: ``/metrics`` (Prometheus) and ``/health`` (JSON).

A small WSGI app on the standard library's server, in a thread of the main process
(the supervisor when there are several workers). ``/health`` answers 200 once at least
one worker has loaded a policy, 503 before; it lists each worker's policy digest.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from milter.ops.metrics import registry

log = logging.getLogger("tocsin.metrics")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class MetricsAddressError(ValueError):
    """The --metrics address is not HOST:PORT."""


def parse_address(spec: str) -> tuple[str, int]:
    """``127.0.0.1:9464``, ``[::1]:9464`` or ``localhost:9464`` → (host, port)."""
    host, sep, port = spec.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise MetricsAddressError(f"{spec!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def worker_policies() -> dict[str, str]:
    """pid → policy digest of every live worker, read from the metrics."""
    found: dict[str, str] = {}
    for family in registry().collect():
        if family.name != "tocsin_policy_info":
            continue
        for sample in family.samples:
            if sample.value == 1:
                found[sample.labels.get("pid", str(os.getpid()))] = sample.labels["digest"]
    return found


def health(started: float) -> tuple[int, dict[str, Any]]:
    """The status code and body of ``/health``."""
    workers = worker_policies()
    body = {
        "status": "ok" if workers else "starting",
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - started, 1),
        "workers": workers,
        "policies": sorted(set(workers.values())),
    }
    return (200 if workers else 503), body


def make_app(started: float) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app serving /metrics and /health."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            payload = generate_latest(registry())
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [payload]
        if path in ("/health", "/healthz"):
            code, body = health(started)
            status = "200 OK" if code == 200 else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(body).encode() + b"\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /health\n"]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s are not news."""


@dataclass
class MetricsServer:
    """A running endpoint; `close` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(spec: str) -> MetricsServer:
    """Bind ``spec`` and serve in a daemon thread; raise OSError when it cannot bind."""
    host, port = parse_address(spec)
    if not is_loopback(host):
        log.warning(
            "metrics on %s: not a loopback address; the endpoint has no authentication", host
        )
    server_class = _IPv6Server if ":" in host else _Server
    server = make_server(
        host, port, make_app(time.time()), server_class=server_class, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="tocsin-metrics", daemon=True)
    thread.start()
    log.info("metrics on http://%s/metrics, health on /health", spec)
    return MetricsServer(server, thread)

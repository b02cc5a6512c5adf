"""Process model: listening sockets (one per front-end), worker processes serving them.

Each worker runs every front-end's server (milter, SMTP filter: anything with ``serve``
and ``request_stop``) over one `MessageService`. With ``workers > 1`` the parent forks
the workers after binding and loading the policy (so a bad policy or a busy port fails
before anything starts), restarts a worker that dies, forwards SIGHUP (policy reload)
and SIGTERM (graceful drain) to them, and exits when they have all finished. Each
worker runs its own asyncio loop; the kernel spreads the connections over the
processes accepting on the shared sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from milter.frontends.service import MessageService
from milter.ops.metrics import policy_digest, record_policy, worker_exited

log = logging.getLogger("tocsin.workers")
CRASH_WINDOW_SECONDS, MAX_CRASHES = 30.0, 10


class Server(Protocol):
    """A front-end server: serves a listening socket until asked to stop, then drains."""

    async def serve(self, sock: socket.socket) -> None:
        """Accept and serve connections on ``sock`` until `request_stop`."""
        ...

    def request_stop(self) -> None:
        """Stop accepting; finish the messages in progress."""
        ...


@dataclass(frozen=True, slots=True)
class Listener:
    """A bound socket and how to build, in each worker, the server that serves it."""

    sock: socket.socket
    make_server: Callable[[MessageService], Server]


ServiceFactory = Callable[[], MessageService]


def run_workers(listeners: Sequence[Listener], workers: int, make_service: ServiceFactory) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    if workers == 1:
        return asyncio.run(_worker(listeners, make_service))
    return _Supervisor(listeners, workers, make_service).run()


async def _worker(listeners: Sequence[Listener], make_service: ServiceFactory) -> int:
    service = make_service()
    await service.warm_up()
    record_policy(policy_digest(service.policies.current.document))
    servers = [(listener.make_server(service), listener.sock) for listener in listeners]

    def stop() -> None:
        for server, _ in servers:
            server.request_stop()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(service))
    log.info("worker %d ready", os.getpid())
    results = await asyncio.gather(
        *(server.serve(sock) for server, sock in servers), return_exceptions=True
    )
    stop()  # one server failing stops the others: the supervisor restarts the worker
    failed = [r for r in results if isinstance(r, BaseException)]
    for exc in failed:
        log.error("worker %d: a server failed: %s", os.getpid(), exc)
    log.info("worker %d stopped after %d message(s)", os.getpid(), service.messages)
    return 1 if failed else 0


def _reload(service: MessageService) -> None:
    errors = service.policies.reload()
    record_policy(policy_digest(service.policies.current.document), reloaded=not errors)
    if errors:
        log.error(
            "policy reload refused (%d error(s)); the previous policy stays in force", len(errors)
        )


class _Supervisor:
    """The parent of several workers."""

    def __init__(
        self, listeners: Sequence[Listener], workers: int, make_service: ServiceFactory
    ) -> None:
        self.listeners = listeners
        self.workers = workers
        self.make_service = make_service
        self.children: set[int] = set()
        self.stopping = False
        self.crashes: list[float] = []

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        for _ in range(self.workers):
            self._spawn()
        status = 0
        while self.children:
            try:
                pid, code = os.wait()
            except ChildProcessError:
                break
            self.children.discard(pid)
            worker_exited(pid)
            if self.stopping:
                continue
            log.error("worker %d exited (status %d); starting another", pid, code)
            if self._crash_looping():
                log.critical("workers keep dying; stopping")
                self._on_stop(signal.SIGTERM, None)
                status = 1
                continue
            self._spawn()
        return status

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                code = asyncio.run(_worker(self.listeners, self.make_service))
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.children.add(pid)

    def _crash_looping(self) -> bool:
        now = time.monotonic()
        self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW_SECONDS] + [now]
        return len(self.crashes) > MAX_CRASHES

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._forward(signal.SIGTERM)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._forward(signal.SIGHUP)

    def _forward(self, sig: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.children.discard(pid)

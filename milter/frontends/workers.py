"""Process model: one listening socket, one or more worker processes serving it.

With ``workers > 1`` the parent forks the workers after binding and loading the policy
(so a bad policy or a busy port fails before anything starts), restarts a worker that
dies, forwards SIGHUP (policy reload) and SIGTERM (graceful drain) to them, and exits
when they have all finished. Each worker runs its own asyncio loop; the kernel spreads
the connections over the processes accepting on the shared socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

from milter.frontends.handler import MessageHandler
from milter.frontends.server import MilterServer
from milter.frontends.settings import MilterSettings

log = logging.getLogger("tocsin.workers")
CRASH_WINDOW_SECONDS, MAX_CRASHES = 30.0, 10


def run_workers(
    sock: socket.socket, settings: MilterSettings, make_handler: Callable[[], MessageHandler]
) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    if settings.workers == 1:
        return asyncio.run(_worker(sock, settings, make_handler))
    return _Supervisor(sock, settings, make_handler).run()


async def _worker(
    sock: socket.socket, settings: MilterSettings, make_handler: Callable[[], MessageHandler]
) -> int:
    handler = make_handler()
    await handler.warm_up()
    server = MilterServer(settings, handler)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, server.request_stop)
    loop.add_signal_handler(signal.SIGINT, server.request_stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(handler))
    log.info("worker %d ready", os.getpid())
    await server.serve(sock)
    log.info("worker %d stopped after %d message(s)", os.getpid(), server.messages)
    return 0


def _reload(handler: MessageHandler) -> None:
    errors = handler.policies.reload()
    if errors:
        log.error(
            "policy reload refused (%d error(s)); the previous policy stays in force", len(errors)
        )


class _Supervisor:
    """The parent of several workers."""

    def __init__(
        self,
        sock: socket.socket,
        settings: MilterSettings,
        make_handler: Callable[[], MessageHandler],
    ) -> None:
        self.sock = sock
        self.settings = settings
        self.make_handler = make_handler
        self.children: set[int] = set()
        self.stopping = False
        self.crashes: list[float] = []

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        for _ in range(self.settings.workers):
            self._spawn()
        status = 0
        while self.children:
            try:
                pid, code = os.wait()
            except ChildProcessError:
                break
            self.children.discard(pid)
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
                code = asyncio.run(_worker(self.sock, self.settings, self.make_handler))
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

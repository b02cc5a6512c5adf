"""Process model: listening sockets (one per front-end), worker processes serving them.

Each worker runs every front-end's server (milter, SMTP filter: anything with ``serve``
and ``request_stop``) over one `MessageService`. With ``workers > 1`` the parent forks
the workers after binding and loading the policy (so a bad policy or a busy port fails
before anything starts), restarts a worker that dies, forwards SIGHUP (policy reload)
and SIGTERM (graceful drain) to them, and exits when they have all finished. Each
worker runs its own asyncio loop; the kernel spreads the connections over the
processes accepting on the shared sockets.

With ``stall_seconds > 0`` (the ``worker_stall_seconds`` setting) the parent also
watches each worker's heartbeat (`milter.frontends.watchdog`) and replaces a worker
whose event loop has not turned for that long, even with a single worker: that is
the deadline that really stops work.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
from milter.frontends.watchdog import Heartbeats, StallWatch, beat_interval
from milter.ops.metrics import policy_digest, record_policy, worker_exited, worker_restarted

log = logging.getLogger("tocsin.workers")
CRASH_WINDOW_SECONDS, MAX_CRASHES = 30.0, 10
PR_SET_PDEATHSIG = 1  # linux/prctl.h


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


def run_workers(
    listeners: Sequence[Listener],
    workers: int,
    make_service: ServiceFactory,
    *,
    stall_seconds: float = 0.0,
) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code.

    One worker without a watchdog runs in this process; otherwise this process
    supervises forked workers (and, with ``stall_seconds``, their heartbeats).
    """
    if workers == 1 and stall_seconds <= 0:
        return asyncio.run(_worker(listeners, make_service))
    return _Supervisor(listeners, workers, make_service, stall_seconds).run()


@dataclass(frozen=True, slots=True)
class _Beat:
    """Where a worker reports that its event loop turns."""

    heartbeats: Heartbeats
    slot: int
    interval: float


async def _worker(
    listeners: Sequence[Listener], make_service: ServiceFactory, beat: _Beat | None = None
) -> int:
    service = make_service()
    await service.warm_up()
    settle_heap()
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
    heartbeat = None
    if beat is not None:  # watched from now on (not while warming up)
        heartbeat = asyncio.create_task(beat.heartbeats.beat(beat.slot, beat.interval))
    results = await asyncio.gather(
        *(server.serve(sock) for server, sock in servers), return_exceptions=True
    )
    if heartbeat is not None:
        heartbeat.cancel()
    stop()  # one server failing stops the others: the supervisor restarts the worker
    failed = [r for r in results if isinstance(r, BaseException)]
    for exc in failed:
        log.error("worker %d: a server failed: %s", os.getpid(), exc)
    log.info("worker %d stopped after %d message(s)", os.getpid(), service.messages)
    return 1 if failed else 0


def settle_heap(*, again: bool = False) -> None:
    """Take what a worker keeps for good out of the garbage collector's sight.

    After the warm-up the policy, its indexes and the suffix and confusable tables are
    ~90 000 tracked objects that every full collection walked again (one every few
    hundred messages). Frozen (`gc.freeze`), they are still freed by reference counting,
    just not traversed: over the benchmark corpus (300 messages, interleaved in one
    process) the scan went 3.20 -> 2.97 ms of CPU per message, collections 0.15 -> 0.03.
    ``again`` (after a policy reload) first unfreezes, so the old policy's reference
    cycles can be collected, then freezes the new state.
    """
    if again:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def _reload(service: MessageService) -> None:
    errors = service.policies.reload()
    if not errors:
        settle_heap(again=True)
    record_policy(policy_digest(service.policies.current.document), reloaded=not errors)
    if errors:
        log.error(
            "policy reload refused (%d error(s)); the previous policy stays in force", len(errors)
        )


def _stop_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM (a graceful drain) when the supervisor dies, even by
    SIGKILL: an orphaned worker would keep serving with nobody to restart or stop it."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


class _Supervisor:
    """The parent of the workers: restarts the dead and kills the stalled."""

    def __init__(
        self,
        listeners: Sequence[Listener],
        workers: int,
        make_service: ServiceFactory,
        stall_seconds: float = 0.0,
    ) -> None:
        self.listeners = listeners
        self.workers = workers
        self.make_service = make_service
        self.children: dict[int, int] = {}  # pid -> heartbeat slot
        self.killed: set[int] = set()  # stalled workers we sent SIGKILL
        self.stopping = False
        self.crashes: list[float] = []
        self.watch = StallWatch(Heartbeats(workers), stall_seconds) if stall_seconds > 0 else None
        self.tick = beat_interval(stall_seconds) if stall_seconds > 0 else 0.5

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        for slot in range(self.workers):
            self._spawn(slot)
        status = 0
        while self.children:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:  # nobody exited: look at the heartbeats, then wait a tick
                self._kill_stalled()
                time.sleep(self.tick)
                continue
            if self._reaped(pid, os.waitstatus_to_exitcode(code)):
                status = 1
        return status

    def _reaped(self, pid: int, code: int) -> bool:
        """A worker exited: start another in its slot. True when giving up (crash loop)."""
        slot = self.children.pop(pid, None)
        worker_exited(pid)
        stalled = pid in self.killed
        self.killed.discard(pid)
        if self.stopping or slot is None:
            return False
        if stalled:
            log.warning("worker %d killed (stalled); starting another", pid)
        else:
            log.error("worker %d exited (status %d); starting another", pid, code)
            worker_restarted("exited")
            if self._crash_looping():  # stalls never count: each one is bounded already
                log.critical("workers keep dying; stopping")
                self._on_stop(signal.SIGTERM, None)
                return True
        self._spawn(slot)
        return False

    def _kill_stalled(self) -> None:
        if self.watch is None:
            return
        now = time.monotonic()
        for pid, slot in list(self.children.items()):
            still = self.watch.stalled(slot, now)
            if still is None or pid in self.killed:
                continue
            log.error(
                "worker %d stalled: its event loop has not turned for %.1f s "
                "(worker_stall_seconds %g); killing it - the messages it held are "
                "tempfailed by the MTA and retried",
                pid,
                still,
                self.watch.stall_seconds,
            )
            worker_restarted("stalled")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.killed.add(pid)

    def _spawn(self, slot: int) -> None:
        beat = None
        if self.watch is not None:
            self.watch.reset(slot)
            beat = _Beat(self.watch.heartbeats, slot, self.tick)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                _stop_with_parent(parent)
                code = asyncio.run(_worker(self.listeners, self.make_service, beat))
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = slot

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
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

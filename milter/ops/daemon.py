"""What ``tocsin serve`` runs beside the workers: metrics endpoint, pid file, policy watcher.

Started in the main process before the workers fork, stopped when they have finished.
A policy file change sends the daemon SIGHUP, so a hot reload takes exactly the path of
``kill -HUP`` and ``tocsin reload``: each worker loads the new policy and keeps the old
one when the new one has errors.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from milter.ops.http import MetricsServer, start_metrics_server
from milter.ops.metrics import enable_multiprocess

log = logging.getLogger("tocsin.daemon")
WATCH_DEBOUNCE_MS = 500  # editors write a file in several steps: wait for them to settle


@dataclass
class DaemonExtras:
    """The running extras; `close` undoes everything `start_extras` did."""

    metrics: MetricsServer | None = None
    metrics_dir: Path | None = None
    pid_file: Path | None = None
    stop_watching: threading.Event = field(default_factory=threading.Event)
    watcher: threading.Thread | None = None

    def close(self) -> None:
        """Stop the endpoint and the watcher, remove the pid file and the metrics files."""
        self.stop_watching.set()
        if self.watcher is not None:
            self.watcher.join(timeout=5)
        if self.metrics is not None:
            self.metrics.close()
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        if self.pid_file is not None and _reads_pid(self.pid_file) == os.getpid():
            self.pid_file.unlink(missing_ok=True)


def start_extras(
    *,
    metrics_listen: str | None,
    pid_file: Path | None,
    watch_dir: Path | None,
) -> DaemonExtras:
    """Start what the settings ask for; raise OSError (nothing left running) on failure."""
    extras = DaemonExtras()
    try:
        if pid_file is not None:
            write_pid_file(pid_file)
            extras.pid_file = pid_file
        if metrics_listen is not None:
            extras.metrics_dir = Path(
                tempfile.mkdtemp(prefix="tocsin-metrics-", dir=os.environ.get("RUNTIME_DIRECTORY"))
            )
            enable_multiprocess(extras.metrics_dir)
            extras.metrics = start_metrics_server(metrics_listen)
        if watch_dir is not None:
            extras.watcher = _start_watcher(watch_dir, extras.stop_watching)
    except BaseException:
        extras.close()
        raise
    return extras


def write_pid_file(path: Path) -> None:
    """Write our pid; refuse when the file names another running tocsin."""
    other = _reads_pid(path)
    if other is not None and other != os.getpid() and is_alive(other):
        raise OSError(f"pid file {path}: tocsin already runs as pid {other}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(path)


def read_pid_file(path: Path) -> int | None:
    """The pid written in ``path``, or None when absent or unreadable."""
    return _reads_pid(path)


def _reads_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isascii() and text.isdigit() else None


def is_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _start_watcher(directory: Path, stop: threading.Event) -> threading.Thread:
    # Until run_workers installs its SIGHUP handler, a change must not kill the daemon
    # (SIGHUP's default action); ignoring it for that moment loses nothing.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    thread = threading.Thread(
        target=_watch, args=(directory, stop), name="tocsin-policy-watch", daemon=True
    )
    thread.start()
    return thread


def _watch(directory: Path, stop: threading.Event) -> None:
    from watchfiles import watch

    log.info("watching %s: a change reloads the policy", directory)
    try:
        for changes in watch(
            directory, stop_event=stop, debounce=WATCH_DEBOUNCE_MS, raise_interrupt=False
        ):
            names = sorted({Path(p).name for _, p in changes})
            log.info("policy files changed (%s): reloading", ", ".join(names))
            os.kill(os.getpid(), signal.SIGHUP)
    except Exception as exc:  # noqa: BLE001 - the daemon keeps serving without hot reload
        log.error("policy watcher stopped (SIGHUP and tocsin reload still work): %s", exc)

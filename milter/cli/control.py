"""``tocsin status`` and ``tocsin reload``: find the daemon by its pid file, ask its health
endpoint, send it SIGHUP."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milter.cli.common import EXIT_BAD_POLICY, EXIT_USAGE, CliError, SubParsers
from milter.ops.daemon import is_alive, read_pid_file

if TYPE_CHECKING:
    from milter.frontends.settings import ServeSettings

DEFAULT_CONFIG = Path("/etc/tocsin/tocsin.yaml")
# LSB init-script status codes, which monitoring tools already understand
STATUS_RUNNING, STATUS_DEAD_PID_FILE, STATUS_NOT_RUNNING = 0, 1, 3
RELOAD_WAIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Daemon:
    """Where to find a running ``tocsin serve``."""

    pid_file: Path
    metrics: str | None


def add_control_parsers(sub: SubParsers) -> None:
    """Register ``status`` and ``reload``."""
    status = sub.add_parser(
        "status", help="is tocsin serve running? workers, policy, uptime (exit 0/1/3 as LSB)"
    )
    _locate_options(status)
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(run=run_status)
    reload = sub.add_parser("reload", help="make tocsin serve reload its policy (SIGHUP)")
    _locate_options(reload)
    reload.set_defaults(run=run_reload)


def _locate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"settings file (default {DEFAULT_CONFIG})"
    )
    parser.add_argument("--pid-file", type=Path, metavar="FILE", help="overrides the settings")
    parser.add_argument(
        "--metrics", metavar="HOST:PORT", help="health endpoint (overrides the settings)"
    )


def locate(args: argparse.Namespace) -> Daemon:
    """The pid file and metrics address from the options, else the settings file."""
    pid_file, metrics = args.pid_file, args.metrics
    config = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if config is not None and (pid_file is None or metrics is None):
        settings = settings_or_fail(config)
        pid_file = pid_file or settings.pid_file
        metrics = metrics or settings.metrics.listen
    if pid_file is None:
        raise CliError(
            "no pid file: give --pid-file, or set pid_file in the settings (--config)", EXIT_USAGE
        )
    return Daemon(pid_file, metrics)


def settings_or_fail(config: Path) -> ServeSettings:
    """The daemon's settings file, or a CliError listing every problem."""
    from milter.frontends.settings import load_settings
    from milter.policy.errors import PolicyInvalid

    try:
        return load_settings(config)
    except PolicyInvalid as exc:
        raise CliError(f"invalid settings:\n{exc}", EXIT_BAD_POLICY) from None


def get_health(metrics: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The daemon's /health answer, or None when it cannot be reached."""
    try:
        with urllib.request.urlopen(f"http://{metrics}/health", timeout=timeout) as answer:
            data: dict[str, Any] = json.load(answer)
            return data
    except urllib.error.HTTPError as exc:  # 503 while starting: the body still says why
        try:
            body: dict[str, Any] = json.load(exc)
            return body
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def _pid(daemon: Daemon) -> int | None:
    return read_pid_file(daemon.pid_file)


def run_status(args: argparse.Namespace) -> int:
    """Print whether the daemon runs, its workers and policy; LSB exit codes."""
    daemon = locate(args)
    pid = _pid(daemon)
    running = pid is not None and is_alive(pid)
    health = get_health(daemon.metrics) if running and daemon.metrics else None
    code = STATUS_RUNNING if running else STATUS_DEAD_PID_FILE if pid else STATUS_NOT_RUNNING
    if args.json:
        print(json.dumps({"running": running, "pid": pid, "health": health}))
        return code
    if not running:
        stale = f" (stale pid file {daemon.pid_file}: pid {pid})" if pid else ""
        print(f"tocsin is not running{stale}")
        return code
    print(f"tocsin is running, pid {pid}")
    if health is not None:
        workers = health.get("workers", {})
        print(f"  status {health.get('status')}, up {_duration(health.get('uptime_seconds', 0))}")
        print(f"  {len(workers)} worker(s): " + ", ".join(sorted(workers)))
        print("  policy " + ", ".join(health.get("policies", [])))
    elif daemon.metrics:
        print(f"  health endpoint http://{daemon.metrics}/health did not answer")
    return code


def run_reload(args: argparse.Namespace) -> int:
    """SIGHUP the daemon; with a health endpoint, wait and say whether the policy changed."""
    daemon = locate(args)
    pid = _pid(daemon)
    if pid is None or not is_alive(pid):
        print(f"tocsin: not running (pid file {daemon.pid_file})", file=sys.stderr)
        return STATUS_NOT_RUNNING
    before = get_health(daemon.metrics) if daemon.metrics else None
    os.kill(pid, signal.SIGHUP)
    print(f"reload signal sent to pid {pid}")
    if before is None or daemon.metrics is None:
        print("the log says whether the new policy was taken (a refused one keeps the old)")
        return 0
    after = _wait_for_change(daemon.metrics, before)
    old, new = before.get("policies", []), (after or {}).get("policies", [])
    if new != old:
        print("policy now " + ", ".join(new) + " (was " + ", ".join(old) + ")")
    else:
        print("policy unchanged: same files, or the new one was refused (see the log)")
    return 0


def _wait_for_change(metrics: str, before: dict[str, Any]) -> dict[str, Any] | None:
    deadline = time.monotonic() + RELOAD_WAIT_SECONDS
    latest = before
    while time.monotonic() < deadline:
        time.sleep(0.5)
        latest = get_health(metrics) or latest
        if latest.get("policies") != before.get("policies") and len(latest["policies"]) == 1:
            break
    return latest


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (
        f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}"
        if days
        else f"{hours:02d}:{minutes:02d}:{secs:02d}"
    )

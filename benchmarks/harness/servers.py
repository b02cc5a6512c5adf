"""The milters under test, each in its own process tree, and their CPU time.

``tocsin`` is the real daemon (``python -m milter serve``); ``null`` is a do-nothing
milter built from the same server and codec whose handler accepts without scanning (the
protocol's own cost). CPU time is read from /proc for the supervisor and its workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.postfix import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")

NULL_MILTER = """
import sys
from milter.frontends.listen import ListenAddress, bind
from milter.frontends.milter.server import MilterServer
from milter.frontends.service import Action, MessageService, Outcome
from milter.frontends.settings import MilterSettings
from milter.frontends.workers import Listener, run_workers
from milter.model.plan import ActionPlan
from milter.model.verdict import Disposition
from milter.policy.store import PolicyStore

class Null(MessageService):
    async def warm_up(self): pass
    async def handle(self, request, *, can_hold=True):
        return Outcome(Action.DELIVER, ActionPlan(Disposition.ACCEPT), request)

sock = bind(ListenAddress("127.0.0.1", int(sys.argv[1])))
settings = MilterSettings(workers=int(sys.argv[2]), max_connections_per_client=0)
listener = Listener(sock, lambda service: MilterServer(settings, service))
sys.exit(run_workers([listener], settings.workers, lambda: Null(PolicyStore(None))))
"""


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            out += [int(x) for x in text.split()]
    except OSError:
        pass
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` (each process's own threads, not its children)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` now, in KiB (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Server:
    """One milter process tree listening on 127.0.0.1:``port``."""

    name: str
    port: int
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Server:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=env)
        wait_port(self.port, timeout=90)
        time.sleep(0.5)  # let every worker finish its warm-up scan
        return self

    @property
    def spec(self) -> str:
        """The Postfix ``smtpd_milters`` value for this server."""
        return f"inet:127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The supervisor and its workers."""
        assert self.proc is not None
        return [self.proc.pid, *children(self.proc.pid)]

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


BENCH_SETTINGS = """\
# The corpus comes from one client address (127.0.0.1, which its SPF records allow); real
# mail comes from many. The per-client caps would refuse the load client's own sessions
# at C=32 (421 at CONNECT or MAIL, which the load client counts as answers), so they are off.
milter:
  max_connections_per_client: 0
smtp:
  max_connections_per_client: 0
"""


def tocsin_server(
    workers: int, nameserver: str | None, quarantine: Path, extra: Sequence[str] = ()
) -> Server:
    """``tocsin serve`` on a free port; DNS through ``nameserver`` (None: --no-dns).
    Its settings file (`BENCH_SETTINGS`) is written beside ``quarantine``."""
    port = free_port()
    dns = ["--nameserver", nameserver] if nameserver else ["--no-dns"]
    config = quarantine.parent / "tocsin-bench.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(BENCH_SETTINGS)
    argv = [
        sys.executable,
        "-m",
        "milter",
        "serve",
        "--config",
        str(config),
        *dns,
        "--log-level",
        "warning",
        "--milter",
        f"inet:127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--quarantine-dir",
        str(quarantine),
        *extra,
    ]
    return Server("tocsin", port, argv)


def null_server(workers: int) -> Server:
    """The do-nothing milter on a free port."""
    port = free_port()
    return Server("null", port, [sys.executable, "-c", NULL_MILTER, str(port), str(workers)])


@dataclass
class MachineSample:
    """Whole-machine CPU counters (/proc/stat) and the load average at one instant."""

    busy: float
    total: float
    load1: float

    @classmethod
    def now(cls) -> MachineSample:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return cls(sum(fields) - idle, sum(fields), os.getloadavg()[0])

    def busy_cores(self, later: MachineSample) -> float:
        """Average number of busy cores between this sample and ``later``."""
        span = later.total - self.total
        return (later.busy - self.busy) / span * (os.cpu_count() or 1) if span else 0.0


@dataclass
class NextHopSink:
    """smtp-sink discarding what the SMTP filter relays (the filter's next hop)."""

    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def next_hop_sink() -> NextHopSink:
    """smtp-sink on a free loopback port, as the SMTP filter's next hop (stop it after)."""
    if shutil.which("smtp-sink") is None:
        raise SystemExit(
            "smtp-sink (Debian package postfix) is needed as the SMTP filter's next hop"
        )
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"])
    wait_port(port)
    return NextHopSink(port, proc)

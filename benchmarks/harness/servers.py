"""The milters under test, each in its own process tree, and their CPU time.

``tocsin`` is the real daemon (``python -m milter serve``); ``null`` is a do-nothing
milter built from the same server and codec whose handler accepts without scanning (the
protocol's own cost). CPU time is read from /proc for the supervisor and its workers.
"""

from __future__ import annotations

import contextlib
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


RSPAMD_LOADED = "has been loaded"
"""rspamd's log line once its hyperscan database (its compiled regexps) is in use."""


def rspamd_version() -> str | None:
    """``rspamd --version``'s line ("Rspamd daemon version 3.4"), None when not installed."""
    if shutil.which("rspamd") is None:
        return None
    out = subprocess.run(["rspamd", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout.strip().splitlines() or ["rspamd"])[0]


def write_rspamd_config(
    work: Path, proxy: int, normal: int, workers: int, nameserver: str, *, hyperscan: bool = True
) -> None:
    """rspamd's configuration as Debian ships it, with local overrides under ``work``: the
    milter proxy on 127.0.0.1:``proxy`` forwarding to ``workers`` normal workers on
    ``normal``, no controller, DNS through ``nameserver``. The corpus comes from 127.0.0.1,
    which rspamd takes for its own network (and would then skip SPF, DKIM and DMARC and sign
    the mail instead): every check is asked for local mail too, and signing is off.
    ``hyperscan=False``: its regexps run on PCRE, with no database to compile first (it
    starts in seconds instead of ~30 s: for smoke tests, not for figures)."""
    for sub in ("local/local.d", "local/override.d", "db", "run", "log"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    override = work / "local" / "override.d"
    (override / "worker-proxy.inc").write_text(
        f'bind_socket = "127.0.0.1:{proxy}";\nmilter = yes;\ntimeout = 120s;\ncount = 1;\n'
        f'upstream "local" {{\n  default = yes;\n  hosts = "127.0.0.1:{normal}";\n}}\n'
    )
    (override / "worker-normal.inc").write_text(
        f'bind_socket = "127.0.0.1:{normal}";\ncount = {workers};\n'
    )
    (override / "worker-controller.inc").write_text("enabled = false;\n")
    local = work / "local" / "local.d"
    checks_local = "check_local = true;\ncheck_authed = true;\n"
    pcre = "" if hyperscan else "disable_hyperscan = true;\n"
    (local / "options.inc").write_text(
        checks_local + pcre + f'dns {{\n  nameserver = ["{nameserver}"];\n  timeout = 1s;\n}}\n'
    )
    for module in ("spf", "dkim", "dmarc"):
        (local / f"{module}.conf").write_text(checks_local)
    (local / "dkim_signing.conf").write_text("enabled = false;\n")
    (local / "arc.conf").write_text(
        "sign_local = false;\nsign_authenticated = false;\nsign_inbound = false;\n"
    )


@dataclass
class RspamdServer(Server):
    """rspamd (Debian's package) as a milter: its own process tree, the reference #15 names.
    Ready once both ports listen and, where it compiles its regexps with hyperscan, once the
    compiled database is loaded (before that it scans with PCRE, slower)."""

    normal_port: int = 0
    work: Path = Path()

    @property
    def log(self) -> Path:
        return self.work / "log" / "rspamd.log"

    def start(self) -> RspamdServer:
        self.log.unlink(missing_ok=True)  # a log of an earlier run says nothing of this one
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.work
        )
        try:
            wait_port(self.port, timeout=120)
            wait_port(self.normal_port, timeout=120)
            deadline = time.monotonic() + 240
            while self._compiling() and time.monotonic() < deadline:
                time.sleep(1)
            self._settle(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _settle(self, deadline: float) -> None:
        """Wait until the processes are idle (under 20 ms of CPU in a second): after the
        database loads, the workers load it and their maps for a few seconds, which the
        first pass would otherwise count as its messages' CPU."""
        while time.monotonic() < deadline:
            before = self.cpu()
            time.sleep(1)
            if self.cpu() - before < 0.02:
                return

    def _compiling(self) -> bool:
        """True while a hyperscan helper runs and the log does not say its database loaded."""
        if self.log.exists() and RSPAMD_LOADED in self.log.read_text(errors="replace"):
            return False
        titles = []
        for pid in children(self.proc.pid if self.proc else 0):
            try:
                titles.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                continue
        return any(b"hs_helper" in title for title in titles)

    def stop(self) -> None:
        workers = children(self.proc.pid) if self.proc is not None else []
        super().stop()
        for pid in workers:  # a worker whose main process was killed: not left running
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def rspamd_server(
    workers: int, nameserver: str, work: Path, *, hyperscan: bool = True
) -> RspamdServer:
    """rspamd on free loopback ports with its configuration under ``work`` (see
    `write_rspamd_config`); start it, stop it after."""
    proxy, normal = free_port(), free_port()
    write_rspamd_config(work, proxy, normal, workers, nameserver, hyperscan=hyperscan)
    argv = ["rspamd", "-f", "-c", "/etc/rspamd/rspamd.conf", "--insecure"]
    if os.geteuid() == 0:
        argv += ["-u", "root", "-g", "root"]  # its files are ours, under ``work``
    for name, sub in (("LOCAL_CONFDIR", "local"), ("DBDIR", "db"), ("RUNDIR", "run")):
        argv += ["--var", f"{name}={work / sub}"]
    argv += ["--var", f"LOGDIR={work / 'log'}"]
    return RspamdServer("rspamd", proxy, argv, normal_port=normal, work=work)

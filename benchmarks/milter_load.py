"""Load benchmark: the milter under concurrency 1, 8 and 32, over the real corpus.

Runs, in the same invocation and on the same machine:
  * ``tocsin serve`` (the real daemon, shipped policy, --no-dns, store quarantine), and
  * a do-nothing milter: the same server and codec with a handler that accepts without
    scanning — the protocol's own cost,
each in its own process, and drives both with the Postfix-like test client: one milter
connection per message (as Postfix opens one per SMTP session), full negotiate →
connect → helo → mail → rcpt → headers → body → end of message. Prints messages/s and
p50/p99 latency (connect to final reply) per concurrency level, side by side.

Usage: python benchmarks/milter_load.py [--messages N] [--workers W] [--levels 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.milter_client import MilterClient  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
NULL_MILTER = """
import asyncio, sys
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
settings = MilterSettings(workers=int(sys.argv[2]))
listener = Listener(sock, lambda service: MilterServer(settings, service))
sys.exit(run_workers([listener], settings.workers, lambda: Null(PolicyStore(None))))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def _corpus(limit: int) -> list[bytes]:
    files = sorted(
        p for d in ("phish-fr", "ham", "robustness") for p in (CORPUS / d).rglob("*") if p.is_file()
    )
    messages = [p.read_bytes() for p in files]
    return (messages * (limit // len(messages) + 1))[:limit]


async def _one(port: int, raw: bytes) -> float:
    started = time.perf_counter()
    client = await MilterClient.open(port=port)
    await client.negotiate()
    await client.connect("mail.example.org", "192.0.2.10")
    await client.helo("mail.example.org")
    await client.message(raw)
    await client.quit()
    return (time.perf_counter() - started) * 1000


async def _drive(port: int, messages: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    queue = list(reversed(messages))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            latencies.append(await _one(port, queue.pop()))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--levels", default="1,8,32")
    args = parser.parse_args()
    messages = _corpus(args.messages)
    size = sum(map(len, messages)) / len(messages)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"tocsin-bench-{os.getpid()}"
    tocsin_port, null_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {
        "tocsin": subprocess.Popen(
            [
                sys.executable,
                "-m",
                "milter",
                "serve",
                "--no-dns",
                "--log-level",
                "warning",
                "--milter",
                f"inet:127.0.0.1:{tocsin_port}",
                "--workers",
                str(args.workers),
                "--quarantine-dir",
                str(tmp),
            ],
            cwd=ROOT,
            env=env,
        ),
        "null": subprocess.Popen(
            [sys.executable, "-c", NULL_MILTER, str(null_port), str(args.workers)],
            cwd=ROOT,
            env=env,
        ),
    }
    try:
        _wait(tocsin_port)
        _wait(null_port)
        print(
            f"corpus: {len(messages)} messages (phish-fr, ham, robustness; {size / 1024:.1f} KiB)"
        )
        print(f"servers: {args.workers} worker(s) each, DNS off; one connection per message")
        print(f"{'conc':>4}  {'milter':<7} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for level in (int(x) for x in args.levels.split(",")):
            for name, port in (("null", null_port), ("tocsin", tocsin_port)):
                asyncio.run(_drive(port, messages[:50], level))  # warm-up
                elapsed, lat = asyncio.run(_drive(port, messages, level))
                print(
                    f"{level:>4}  {name:<7} {len(messages) / elapsed:>8.0f} "
                    f"{statistics.median(lat):>8.2f} {_pct(lat, 0.99):>8.2f}"
                )
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(30)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()

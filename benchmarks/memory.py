"""Peak memory of a real ``tocsin serve`` worker for large messages sent over the milter protocol.

For each kind of message (a base64 attachment with a short text part; one large text part;
one large HTML part) a fresh ``tocsin serve --workers 1 --no-dns`` is started, warmed up with
a small message, and its worker's ``VmRSS`` read (the idle baseline); the large message is
sent as Postfix sends it (headers, 64 KiB body chunks, end of message) and the worker's
``VmHWM`` (peak resident set, anonymous and file-backed pages) read after the answer. Printed:
peak above idle in MiB and as a multiple of the message size (issue #15's target: ≤ 2×).
With ``--concurrent N`` the same message is also sent on N connections at once (the
``spool.large_scans`` bound: one scan at a time per worker by default).

Usage (from the repository root):
    .venv/bin/python benchmarks/memory.py [--size-mib 40] [--kinds att,text,html]
        [--concurrent 3] [--tree PATH]

``--tree`` runs the server from another checkout (e.g. an older commit unpacked with
``git archive``) to compare before and after with the same client.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.servers import children, free_port, wait_port  # noqa: E402
from tests.support.milter_client import one_message  # noqa: E402

MIB = 1024 * 1024
SMALL = b"From: Tocsin <a@example.org>\r\nSubject: warm-up\r\n\r\nhttps://example.org/\r\n"
HEAD = (
    b"From: Compta <compta@entreprise.example>\r\nTo: user@example.net\r\n"
    b"Subject: facture\r\nMIME-Version: 1.0\r\nMessage-ID: <m1@entreprise.example>\r\n"
)


def message(kind: str, size: int) -> bytes:
    """A message of about ``size`` bytes of the given kind."""
    if kind == "att":
        data = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
        return (
            HEAD + b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
            b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Bonjour, voici la facture https://www.exemple.fr/facture\r\n"
            b"--XX\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="facture.pdf"\r\n\r\n'
            + data
            + b"--XX--\r\n"
        )
    if kind == "text":
        line = b"Bonjour, voici la lettre d'information https://www.exemple.fr/page\r\n"
        return (
            HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + line * (size // len(line))
        )
    line = b'<p>Bonjour, <a href="https://www.exemple.fr/page">la page</a> du mois.</p>\r\n'
    return HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + line * (size // len(line))


def status(pid: int, key: str) -> int:
    """``key`` (VmRSS, VmHWM) of process ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def start(tree: Path, port: int, work: Path) -> subprocess.Popen[bytes]:
    config = work / "tocsin.yaml"
    spool = work / "spool"
    spool.mkdir(exist_ok=True)
    if (tree / "milter" / "mime" / "spool.py").exists():
        config.write_text(f"spool:\n  directory: {spool}\n")
    else:
        config.write_text("{}\n")  # an older tree: no spool settings
    argv = [
        sys.executable,
        "-m",
        "milter",
        "serve",
        "--config",
        str(config),
        "--no-dns",
        "--log-level",
        "warning",
        "--milter",
        f"inet:127.0.0.1:{port}",
        "--workers",
        "1",
        "--quarantine-dir",
        str(work / "q"),
    ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(argv, cwd=tree, env=env)
    wait_port(port, timeout=90)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def measure(tree: Path, raw: bytes, concurrent: int) -> tuple[int, int, int, str]:
    """(idle RSS, peak, peak - idle) in KiB for one fresh server and the final reply."""
    with tempfile.TemporaryDirectory(prefix="tocsin-mem-") as tmp:
        port = free_port()
        proc = start(tree, port, Path(tmp))
        try:
            time.sleep(1.0)
            workers = children(proc.pid)
            worker = workers[0] if workers else proc.pid  # one worker may be the process itself
            asyncio.run(one_message(port, SMALL))
            idle = status(worker, "VmRSS")
            outcomes = asyncio.run(_send(port, raw, concurrent))
            peak = status(worker, "VmHWM")
            final = ", ".join(type(o.final).__name__ for o in outcomes)
            leftovers = list((Path(tmp) / "spool").iterdir())
            if leftovers:
                final += f" (spool leftovers: {len(leftovers)})"
        finally:
            stop(proc)
    return idle, peak, peak - idle, final


async def _send(port: int, raw: bytes, concurrent: int) -> list:  # type: ignore[type-arg]
    return list(await asyncio.gather(*(one_message(port, raw) for _ in range(concurrent))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=float, default=40)
    parser.add_argument("--kinds", default="att,text,html")
    parser.add_argument("--concurrent", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT)
    args = parser.parse_args()
    print(f"server tree: {args.tree}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'message':8} {'MiB':>6} {'conns':>5} {'idle MiB':>9} {'peak MiB':>9} "
          f"{'above idle':>10} {'x size':>7}  replies")  # fmt: skip
    for kind in args.kinds.split(","):
        raw = message(kind, int(args.size_mib * MIB))
        for conns in sorted({1, args.concurrent}):
            idle, peak, above, final = measure(args.tree, raw, conns)
            print(
                f"{kind:8} {len(raw) / MIB:6.1f} {conns:5d} {idle / 1024:9.1f} {peak / 1024:9.1f} "
                f"{above / 1024:10.1f} {above * 1024 / len(raw):7.2f}  {final}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

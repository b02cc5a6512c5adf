"""Profile ``tocsin serve`` under the benchmark's load with py-spy; print where time goes.

Starts the loopback DNS server and ``tocsin serve --workers W`` exactly as
``benchmarks/milter_load.py`` does, drives the corpus at concurrency C, and meanwhile
samples every worker with ``py-spy record --subprocesses --gil`` (function level; only
the thread holding the GIL, so waiting threads and the idle event loop do not count).
Prints the top functions by own time (the innermost frame of each sample) and the share
of each area of the code (by file: milter sub-packages, dkim, email, asyncio, ...), which
is what docs/performance.md quotes.

``--front smtp`` drives Tocsin's SMTP filter instead (XFORWARD as Postfix sends it,
relaying to smtp-sink as in ``milter_load.py``), so the two front-ends' costs can be set
side by side.

Usage (root, py-spy installed with ``pip install -e '.[bench]'``):
    .venv/bin/python benchmarks/profile_load.py [--messages 1500] [--concurrency 8]
        [--uncached] [--front milter|smtp] [--raw FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.corpus import generate, make_keys, zone  # noqa: E402
from benchmarks.harness.frontends import MilterFront, SmtpFilterFront  # noqa: E402
from benchmarks.harness.servers import free_port, next_hop_sink, tocsin_server  # noqa: E402
from benchmarks.milter_load import _drive  # noqa: E402
from tests.support.dnsserver import DnsTestServer  # noqa: E402

PYSPY_ARGS = ("--subprocesses", "--gil", "--function", "--format", "raw", "--rate", "250")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")
AREAS = (  # (label, start of the file path as py-spy prints it), first match wins
    ("tocsin links/HTML", "milter/links/"),
    ("tocsin auth (SPF/DKIM/DMARC/ARC)", "milter/auth/"),
    ("tocsin checks", "milter/checks/"),
    ("tocsin MIME", "milter/mime/"),
    ("tocsin text (HTML to text, folding)", "milter/text/"),
    ("tocsin actions (banner, defang)", "milter/actions/"),
    ("tocsin engine (scan, decide, plan)", "milter/engine/"),
    ("tocsin codec", "milter/codec/"),
    ("tocsin front-end", "milter/frontends/"),
    ("tocsin quarantine", "milter/quarantine/"),
    ("tocsin dns", "milter/dns/"),
    ("tocsin other", "milter/"),
    ("dkimpy", "dkim/"),
    ("dnspython", "dns/"),
    ("tldextract", "tldextract/"),
    ("stdlib email", "email/"),
    ("stdlib html.parser", "html/"),
    ("stdlib html.parser", "_markupbase.py"),
    ("stdlib asyncio", "asyncio/"),
    ("stdlib selectors", "selectors.py"),
    ("stdlib re", "re/"),
    ("stdlib urllib", "urllib/"),
    ("threads", "concurrent/"),
    ("threads", "threading.py"),
)


def parse_collapsed(text: str) -> list[tuple[list[tuple[str, str]], int]]:
    """py-spy's raw (collapsed) output: one 'frame;frame;... count' per line."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            frames.append((match["func"], match["file"]) if match else (frame, ""))
        stacks.append((frames, int(count)))
    return stacks


def area_of(path: str) -> str:
    for label, prefix in AREAS:
        if path.startswith(prefix):
            return label
    return "other (" + Path(path).name + ")" if path else "other"


def summarize(text: str, top: int = 25) -> str:
    """Top functions by own time, then areas by own time (and inclusive for tocsin areas)."""
    stacks = parse_collapsed(text)
    total = sum(count for _, count in stacks) or 1
    own: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        func, path = frames[-1]
        own[f"{func} ({_short(path)})"] += count
        areas[area_of(path)] += count
        for label in {area_of(p) for _, p in frames} - {"other", "tocsin other"}:
            inclusive[label] += count
    lines = [f"{total} samples; top {top} functions by own time:"]
    lines += [f"{100 * n / total:6.1f} %  {name}" for name, n in own.most_common(top)]
    lines.append("own time by area:")
    lines += [f"{100 * n / total:6.1f} %  {name}" for name, n in areas.most_common(20)]
    lines.append("inclusive time (a sample counts once per area on its stack):")
    lines += [f"{100 * n / total:6.1f} %  {name}" for name, n in inclusive.most_common(24)]
    return "\n".join(lines)


def _short(path: str) -> str:
    return path.rpartition(":")[0] if path.rpartition(":")[2].isdigit() else path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--uncached", action="store_true", help="unique names per message")
    parser.add_argument("--front", choices=("milter", "smtp"), default="milter")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--summarize", type=Path, help="only summarize this raw file")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(args.summarize.read_text()))
        return 0
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    work = Path(tempfile.mkdtemp(prefix="tocsin-prof-"))
    raw = args.raw or work / "profile.txt"
    try:
        keys = make_keys(work / "keys")
        unique = "p" if args.uncached else None
        messages = generate(args.messages, 2026, keys, unique=unique)
        with DnsTestServer(zone(keys, messages), ttl=3600, soa_ttl=3600, soa_minimum=3600) as dns:
            sink = next_hop_sink() if args.front == "smtp" else None
            extra: list[str] = []
            if sink is not None:
                smtp_port = free_port()
                extra = ["--smtp", f"127.0.0.1:{smtp_port}", "--next-hop", f"127.0.0.1:{sink.port}"]
            server = tocsin_server(args.workers, dns.address, work / "quarantine", extra).start()
            front: MilterFront | SmtpFilterFront = (
                MilterFront("tocsin", server.port)
                if sink is None
                else SmtpFilterFront("tocsin-smtp", smtp_port)
            )
            try:
                if not args.uncached:
                    asyncio.run(_drive(front, messages[:100], 8))
                supervisor = str(server.pids()[0])
                argv = [pyspy, "record", "--pid", supervisor, *PYSPY_ARGS, "--output", str(raw)]
                spy = subprocess.Popen(
                    argv,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                elapsed, _, errors = asyncio.run(_drive(front, messages, args.concurrency))
                spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
                _, err = spy.communicate(timeout=60)
            finally:
                server.stop()
                if sink is not None:
                    sink.stop()
        print(
            f"{len(messages)} messages at C={args.concurrency} in {elapsed:.1f}s "
            f"({errors} errors), {'uncached' if args.uncached else 'cached'} DNS, "
            f"{args.front} front-end"
        )
        if not raw.exists():
            print(f"py-spy wrote nothing: {err.decode(errors='replace')}", file=sys.stderr)
            return 1
        print(summarize(raw.read_text()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

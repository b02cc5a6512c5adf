"""What the side-by-side benchmarks of two trees share (``engine_ab.py``, ``auth_ab.py``).

Each compares this checkout ("new") with another (``--base DIR``) by running one process
per tree over the same corpus, its records on one loopback DNS server, the processes
started afresh in alternating order so that neither tree always starts first. Here is the
driver's side: the corpus file, the DNS server, each tree's interpreter, the order. The
child's side stays in each script: a child runs under the other tree's interpreter, before
any package but that tree's ``milter`` may be imported.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.corpus import BenchMessage, generate, make_keys, zone
from tests.support.dnsserver import DnsTestServer

TREES = ("new", "base")

Row = tuple[bytes, str, str, str, str]
"""A corpus message as the child processes read it: raw, client IP, HELO, MAIL FROM, RCPT."""


@dataclass(frozen=True)
class PairedCorpus:
    """The corpus both trees' processes read, and the DNS server answering its records."""

    messages: list[BenchMessage]
    path: Path  # the pickled rows
    dns: str  # the DNS server's address, "127.0.0.1:port"


def is_checkout(path: str | None) -> bool:
    """True when ``path`` is a Tocsin checkout (it has the ``milter`` package)."""
    return bool(path) and (Path(str(path)) / "milter" / "__init__.py").is_file()


def tree_command(root: Path, script: Path) -> list[str]:
    """The command that runs ``script`` with ``root``'s own interpreter (its
    ``.venv/bin/python`` when it has one, else this one)."""
    python = root / ".venv" / "bin" / "python"
    return [str(python if python.exists() else sys.executable), str(script)]


def start_order(round_number: int) -> tuple[str, str]:
    """Which tree's process starts first in this round: each in turn."""
    return TREES if round_number % 2 == 0 else (TREES[1], TREES[0])


@contextmanager
def paired_corpus(count: int, keys_dir: str) -> Iterator[PairedCorpus]:
    """``count`` corpus messages written where the children read them, and their records
    served on loopback (long TTLs: each process's resolver cache stays warm); both removed
    and stopped on exit."""
    keys = make_keys(Path(keys_dir))
    messages = generate(count, keys=keys)
    rows: list[Row] = [(m.raw, m.client_ip, m.helo, m.mail_from, m.rcpt) for m in messages]
    with (
        tempfile.TemporaryDirectory(prefix="tocsin-ab-") as work,
        DnsTestServer(zone(keys, messages), ttl=3600, soa_ttl=3600, soa_minimum=3600) as dns,
    ):
        path = Path(work) / "corpus.pickle"
        path.write_bytes(pickle.dumps(rows))
        yield PairedCorpus(messages, path, str(dns.address))

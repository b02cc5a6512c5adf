"""Real Postfix in front of a real ``tocsin serve``, DNS from the local test server.

One stack per module: a DNS test server, ``tocsin serve`` (a separate process, as
deployed) with a policy whose recipient-domain overrides choose the action per test
(tag.test → banner, reject.test → 550, hold.test → Postfix hold queue, anything else →
the shipped defaults: quarantine in Tocsin's store), and a private Postfix relaying to
smtp-sink.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dnsserver import DnsTestServer
from tests.support.milter_fixtures import policy_dir, start_milter
from tests.support.postfix import PostfixInstance, free_port, postfix_missing_reason

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["ROOT", "MailStack", "policy_dir", "start_milter", "start_tocsin", "stop_tocsin"]

POLICY = """\
authentication:
  authserv_id: mx.test.invalid
recipient_domains:
  tag.test:
    rules:
      - name: tag-impersonation
        before: brand-impersonation
        when: {brand_claimed: true, min_severity: high}
        verdict: tag
  reject.test:
    rules:
      - name: refuse-impersonation
        before: brand-impersonation
        when: {brand_claimed: true, min_severity: high}
        verdict: reject
  hold.test:
    actions: {quarantine_store: hold}
"""


@dataclass
class MailStack:
    """Everything a Postfix integration test talks to."""

    postfix: PostfixInstance
    tocsin: subprocess.Popen[str]
    milter_port: int
    quarantine_dir: Path
    log_path: Path

    def tocsin_log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_tocsin(
    port: int,
    policy_dir: Path,
    quarantine_dir: Path,
    nameserver: str,
    log_path: Path,
    *,
    smtp_port: int | None = None,
    next_hop_port: int | None = None,
) -> subprocess.Popen[str]:
    """``tocsin serve`` as a process (milter, and the SMTP filter when ``smtp_port`` is
    given), waiting until every front-end accepts connections."""
    log = log_path.open("a")
    smtp = []
    if smtp_port is not None:
        smtp = ["--smtp", f"127.0.0.1:{smtp_port}", "--next-hop", f"127.0.0.1:{next_hop_port}"]
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "milter", "serve",
            "--milter", f"inet:127.0.0.1:{port}",
            *smtp,
            "--policy", str(policy_dir),
            "--quarantine-dir", str(quarantine_dir),
            "--nameserver", nameserver,
        ],
        cwd=ROOT, stdout=log, stderr=log, text=True,
    )  # fmt: skip
    for listening in (port, smtp_port):
        if listening is not None and not _wait_listening(proc, listening):
            proc.kill()
            proc.wait(10)
            raise RuntimeError(f"tocsin serve did not listen: {log_path.read_text()}")
    return proc


def _wait_listening(proc: subprocess.Popen[str], port: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def stop_tocsin(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def mail_stack() -> Iterator[MailStack]:
    reason = postfix_missing_reason()
    if reason:
        pytest.skip(reason)
    # Postfix's own users must reach these files: pytest's tmp dirs are 0700.
    root = Path(tempfile.mkdtemp(prefix="tocsin-postfix-"))
    root.chmod(0o755)
    policy_dir = root / "policies"
    policy_dir.mkdir()
    (policy_dir / "local.yaml").write_text(POLICY)
    quarantine_dir = root / "quarantine"
    with DnsTestServer() as dns:
        dns.add("example.org", "TXT", "v=spf1 ip4:127.0.0.1 -all")
        dns.add("_dmarc.example.org", "TXT", "v=DMARC1; p=reject")
        port = free_port()
        log_path = root / "tocsin.log"
        tocsin = start_tocsin(port, policy_dir, quarantine_dir, dns.address, log_path)
        postfix = PostfixInstance(root / "postfix", milter=f"inet:127.0.0.1:{port}")
        stack = MailStack(postfix, tocsin, port, quarantine_dir, log_path)
        try:
            postfix.start()
            yield stack
        finally:
            postfix.stop()
            stop_tocsin(stack.tocsin)  # a test may have restarted it (the Postfix-down test)
            shutil.rmtree(root, ignore_errors=True)

"""A private Postfix instance on loopback high ports, for integration tests.

Recipe from ../shared/docs/milter-postfix.md §4.2: own config, queue and data
directories under a temporary directory, smtpd on 127.0.0.1:<smtpd_port>, relaying
everything to smtp-sink on 127.0.0.1:<sink_port>, which dumps one file per message.
Needs root (Postfix's master drops privileges itself) and the Debian ``postfix`` package.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.leftovers import POSTFIX_ROOTS
from tests.support.sinkdump import settled

POSTFIX = Path("/usr/sbin/postfix")


def postfix_missing_reason() -> str | None:
    """Why Postfix tests cannot run here, or None."""
    if not POSTFIX.exists() or shutil.which("smtp-sink") is None:
        return "Postfix is not installed (the README's test command installs it with apt)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    return None


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostfixInstance:
    """One throw-away Postfix; ``milter`` is its smtpd_milters value."""

    root: Path
    milter: str
    smtpd_port: int = field(default_factory=free_port)
    sink_port: int = field(default_factory=free_port)
    reinject_port: int = field(default_factory=free_port)
    extra_main: dict[str, str] = field(default_factory=dict)
    sink_dump: bool = True  # False: smtp-sink discards (load benchmarks)
    _sink: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.root / "etc"

    @property
    def sink_dir(self) -> Path:
        return self.root / "sink"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def _postconf(self, *args: str) -> None:
        subprocess.run(["postconf", "-c", str(self.config), *args], check=True, capture_output=True)

    def start(self) -> None:
        """Write the configuration, start smtp-sink and Postfix, wait for smtpd."""
        for name in ("etc", "queue", "data", "sink"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        POSTFIX_ROOTS.add(self.root)  # the session-end check finds a master left running
        shutil.chown(self.root / "data", "postfix")
        shutil.chown(self.sink_dir, "nobody")
        self.root.chmod(0o755)
        shutil.copy("/etc/postfix/master.cf", self.config / "master.cf")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.test.invalid",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.sink_port}",
            "disable_dns_lookups": "yes",
            "smtp_host_lookup": "native",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": f"/var,/dev/stdout,{self.root}",
            "smtpd_milters": self.milter,
            "milter_default_action": "tempfail",
            "milter_connect_timeout": "5s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "30s",
            "alias_maps": "",
            "alias_database": "",
            "smtputf8_enable": "no",
            **self.extra_main,
        }
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        self._postconf("-M#", "smtp/inet")
        self._postconf(
            "-M",
            f"127.0.0.1:{self.smtpd_port}/inet=127.0.0.1:{self.smtpd_port} inet n - n - - smtpd",
        )
        # the re-injection port Tocsin releases quarantined mail to: no milters
        port = self.reinject_port
        self._postconf(
            "-M",
            f"127.0.0.1:{port}/inet=127.0.0.1:{port} inet n - n - - smtpd"
            " -o smtpd_milters= -o non_smtpd_milters=",
        )
        self._postconf("-F", "*/*/chroot = n")
        self._sink = subprocess.Popen(
            [
                "smtp-sink",
                "-u",
                "nobody",
                *(["-d", f"{self.sink_dir}/%H%M%S."] if self.sink_dump else []),
                f"127.0.0.1:{self.sink_port}",
                "100",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result = subprocess.run(
            ["postfix", "-c", str(self.config), "start"],
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"postfix start failed: {result.stdout}{result.stderr}{self.log()}")
        wait_port(self.smtpd_port)
        wait_port(self.sink_port)

    def stop(self) -> None:
        """Stop Postfix and the sink."""
        subprocess.run(
            ["postfix", "-c", str(self.config), "stop"], check=False, capture_output=True
        )
        if self._sink is not None:
            self._sink.terminate()
            self._sink.wait(10)

    def log(self) -> str:
        """The mail log so far."""
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def send(
        self, raw: bytes, mail_from: str, rcpts: list[str], port: int | None = None
    ) -> tuple[int, bytes]:
        """Submit over SMTP; return the (code, text) of the end of DATA (or of the failure)."""
        with smtplib.SMTP("127.0.0.1", port or self.smtpd_port, timeout=60) as smtp:
            smtp.ehlo("client.test")
            code, text = smtp.mail(mail_from)
            if code >= 400:
                return code, text
            for rcpt in rcpts:
                code, text = smtp.rcpt(rcpt)
                if code >= 400:
                    return code, text
            code, text = smtp.data(raw)
            return code, text

    def delivered(self, count: int = 1, timeout: float = 30) -> list[bytes]:
        """Wait until smtp-sink has ``count`` messages; return them, oldest first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = sorted(self.sink_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns)
            if len(files) >= count:
                return [settled(p) for p in files]
            self.flush()
            time.sleep(0.2)
        raise AssertionError(f"{count} message(s) not delivered; log:\n{self.log()[-3000:]}")

    def flush(self) -> None:
        subprocess.run(
            ["postqueue", "-c", str(self.config), "-f"], check=False, capture_output=True
        )

    def queue(self) -> str:
        """``postqueue -p``: held messages carry a ``!`` after their id."""
        return subprocess.run(
            ["postqueue", "-c", str(self.config), "-p"], check=False, capture_output=True, text=True
        ).stdout


def wait_port(port: int, timeout: float = 20) -> None:
    """Return once something accepts on 127.0.0.1:``port``; raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def strip_sink_headers(dump: bytes) -> bytes:
    """The message as delivered: smtp-sink prefixes X-Client-Addr/X-Mail-Args/... lines."""
    lines = dump.split(b"\n")
    index = 0
    while index < len(lines) and lines[index].startswith(
        (b"X-Client-", b"X-Mail-Args", b"X-Rcpt-Args", b"X-Helo-Args")
    ):
        index += 1
    return b"\n".join(lines[index:])

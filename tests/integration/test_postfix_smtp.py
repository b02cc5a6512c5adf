"""Real Postfix 3.7 → ``tocsin serve`` → smtp-sink, in all three wirings at once.

One Postfix instance, three entry ports, each wired as deploy/postfix/ says (the snippets
are read and applied here, ports swapped for free ones): the milter
(``smtpd_milters``), the SMTP filter before the queue (``smtpd_proxy_filter``) and after
it (``content_filter`` to a ``tocsin`` smtp transport). All three re-inject or relay
through the same 127.0.0.1:10026-style smtpd (deploy/postfix/master.cf.snippet) to
smtp-sink. One ``tocsin serve`` runs the milter and the SMTP filter together.
"""

from __future__ import annotations

import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.integration.conftest import POLICY, ROOT, start_tocsin, stop_tocsin
from tests.support.dnsserver import DnsTestServer
from tests.support.postfix import (
    PostfixInstance,
    free_port,
    postfix_missing_reason,
    strip_sink_headers,
)
from tests.support.sinkdump import settled
from tests.support.smtp_filter import wait_port

pytestmark = pytest.mark.system

DEPLOY = ROOT / "deploy" / "postfix"
EXAMPLES = ROOT / "docs" / "examples"
LURE = (EXAMPLES / "cpf-lure.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
HAM = (EXAMPLES / "legit-notice.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
TRACE = (b"received:", b"return-path:", b"x-tocsin-test-path:")


def snippet_entries(name: str) -> list[tuple[list[str], dict[str, str]]]:
    """(service fields, -o options) of each master.cf entry in a deploy snippet."""
    entries: list[tuple[list[str], dict[str, str]]] = []
    for line in (DEPLOY / name).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            flag, option = line.split()
            assert flag == "-o"
            key, _, value = option.partition("=")
            entries[-1][1][key] = value
        else:
            entries.append((line.split(), {}))
    return entries


def snippet_params(name: str) -> dict[str, str]:
    """name = value lines of a main.cf snippet."""
    params: dict[str, str] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            params[key.strip()] = value.strip()
    return params


@dataclass
class Wirings:
    """The Postfix instance, its three entry ports and the tocsin process."""

    postfix: PostfixInstance
    milter_entry: int
    before_entry: int
    after_entry: int
    tocsin: subprocess.Popen[str]
    restart: dict[str, object]
    quarantine_dir: Path
    log_path: Path

    def start_tocsin(self) -> None:
        self.tocsin = start_tocsin(**self.restart)  # type: ignore[arg-type]

    def tocsin_log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _postconf(postfix: PostfixInstance, *args: str) -> None:
    subprocess.run(["postconf", "-c", str(postfix.config), *args], check=True, capture_output=True)


def _wire(postfix: PostfixInstance, filter_port: int) -> tuple[int, int]:
    """Add the before-queue and after-queue entry ports as deploy/postfix/ says."""
    swap = {"10025": str(filter_port), "10026": str(postfix.reinject_port)}

    def ported(value: str) -> str:
        for old, new in swap.items():
            value = value.replace(old, new)
        return value

    reinject = f"127.0.0.1:{postfix.reinject_port}/inet"
    ((_, release),) = snippet_entries("master.cf.snippet")
    for key, value in release.items():
        _postconf(postfix, "-P", f"{reinject}/{key}={ported(value)}")
    before, after = free_port(), free_port()
    ((_, proxy),) = snippet_entries("smtp-filter-before-queue.master.cf.snippet")
    _postconf(postfix, "-M", f"127.0.0.1:{before}/inet=127.0.0.1:{before} inet n - n - 20 smtpd")
    for key, value in {**proxy, "smtpd_milters": ""}.items():
        _postconf(postfix, "-P", f"127.0.0.1:{before}/inet/{key}={ported(value)}")
    ((fields, transport),) = snippet_entries("smtp-filter-after-queue.master.cf.snippet")
    _postconf(postfix, "-M", f"tocsin/unix={' '.join(fields)}")
    for key, value in transport.items():
        _postconf(postfix, "-P", f"tocsin/unix/{key}={value}")
    _postconf(postfix, "-M", f"127.0.0.1:{after}/inet=127.0.0.1:{after} inet n - n - - smtpd")
    main = snippet_params("smtp-filter-after-queue.main.cf.snippet")
    for key, value in {**main, "smtpd_milters": ""}.items():  # per entry port, not global
        _postconf(postfix, "-P", f"127.0.0.1:{after}/inet/{key}={ported(value)}")
    result = subprocess.run(
        ["postfix", "-c", str(postfix.config), "reload"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    wait_port(before)
    wait_port(after)
    return before, after


@pytest.fixture(scope="module")
def wirings() -> Iterator[Wirings]:
    reason = postfix_missing_reason()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="tocsin-wirings-"))
    root.chmod(0o755)
    policy_dir = root / "policies"
    policy_dir.mkdir()
    (policy_dir / "local.yaml").write_text(POLICY)
    with DnsTestServer() as dns:
        dns.add("example.org", "TXT", "v=spf1 ip4:127.0.0.1 -all")
        dns.add("_dmarc.example.org", "TXT", "v=DMARC1; p=reject")
        milter_port, filter_port = free_port(), free_port()
        postfix = PostfixInstance(root / "postfix", milter=f"inet:127.0.0.1:{milter_port}")
        restart: dict[str, object] = {
            "port": milter_port,
            "policy_dir": policy_dir,
            "quarantine_dir": root / "quarantine",
            "nameserver": dns.address,
            "log_path": root / "tocsin.log",
            "smtp_port": filter_port,
            "next_hop_port": postfix.reinject_port,
        }
        stack: Wirings | None = None
        try:
            postfix.start()
            before, after = _wire(postfix, filter_port)
            tocsin = start_tocsin(**restart)  # type: ignore[arg-type]
            stack = Wirings(
                postfix, postfix.smtpd_port, before, after, tocsin, restart,
                root / "quarantine", root / "tocsin.log",
            )  # fmt: skip
            yield stack
        finally:
            postfix.stop()
            if stack is not None:
                stop_tocsin(stack.tocsin)
            shutil.rmtree(root, ignore_errors=True)


def _tagged(raw: bytes, tag: str) -> bytes:
    return raw.replace(b"\r\n\r\n", f"\r\nX-Test-Case: {tag}\r\n\r\n".encode(), 1)


def _delivered(stack: Wirings, tag: str, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in stack.postfix.sink_dir.iterdir():
            data = path.read_bytes()
            if f"X-Test-Case: {tag}\n".encode() in data:
                return strip_sink_headers(settled(path, data))
        stack.postfix.flush()
        time.sleep(0.2)
    raise AssertionError(f"{tag} not delivered\n{stack.postfix.log()[-3000:]}")


def _not_delivered(stack: Wirings, tag: str, wait: float = 3) -> bool:
    time.sleep(wait)
    return not any(
        f"X-Test-Case: {tag}\n".encode() in p.read_bytes() for p in stack.postfix.sink_dir.iterdir()
    )


def _send(
    port: int,
    raw: bytes,
    to: str,
    mail_options: tuple[str, ...] = (),
    rcpt_options: tuple[str, ...] = (),
) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=120) as smtp:
        smtp.ehlo()
        code, text = smtp.mail("notices@example.org", list(mail_options))
        if code >= 400:
            return code, text
        code, text = smtp.rcpt(to, list(rcpt_options))
        if code >= 400:
            return code, text
        try:
            return smtp.data(raw)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error


def _without_trace(message: bytes) -> bytes:
    """The message minus trace headers (each hop adds its own Received)."""
    head, _, body = message.replace(b"\r\n", b"\n").partition(b"\n\n")
    fields = re.split(rb"\n(?![ \t])", head)
    kept = [f for f in fields if not f.lower().startswith(TRACE)]
    return b"\n".join(kept) + b"\n\n" + body


@pytest.mark.parametrize("wiring", ["before", "after"])
def test_ham_and_tagged_lure_are_delivered_with_the_edits(wirings: Wirings, wiring: str) -> None:
    port = wirings.before_entry if wiring == "before" else wirings.after_entry
    assert _send(port, _tagged(HAM, f"ham-{wiring}"), "user@example.net")[0] == 250
    assert _send(port, _tagged(LURE, f"lure-{wiring}"), "victim@tag.test")[0] == 250
    ham = _delivered(wirings, f"ham-{wiring}")
    lure = message_from_bytes(_delivered(wirings, f"lure-{wiring}"), policy=policy.default)
    assert b"X-Tocsin-Verdict: v=1; verdict=accept" in ham
    assert str(lure["Subject"]).startswith("[SUSPECT]")
    assert "verdict=tag" in str(lure["X-Tocsin-Verdict"])
    texts = [p.get_content() for p in lure.walk() if p.get_content_maintype() == "text"]
    assert texts
    assert all("Tocsin" in t for t in texts)
    # the re-injection smtpd accepted XFORWARD from Tocsin (the real client in its logs;
    # logged per message: Tocsin keeps its session open between messages)
    assert re.search(r"tocsin-release/smtpd.*: client=.*, orig_client=", wirings.postfix.log())


def test_before_queue_reject_reaches_the_sender_with_the_policys_reply(wirings: Wirings) -> None:
    code, text = _send(wirings.before_entry, _tagged(LURE, "rej-before"), "victim@reject.test")
    assert code == 550
    assert b"5.7.1" in text
    assert b"impersonation" in text
    assert _not_delivered(wirings, "rej-before")


def test_before_queue_dsn_parameters_are_not_refused(wirings: Wirings) -> None:
    """Regression (../shared/docs/milter-postfix.md §3.3): aiosmtpd alone answers 555 to
    RET/ENVID/NOTIFY, which Postfix turns into a permanent rejection."""
    code, _ = _send(
        wirings.before_entry,
        _tagged(HAM, "dsn-before"),
        "user@example.net",
        mail_options=("RET=HDRS", "ENVID=Dsn+2BCase"),
        rcpt_options=("NOTIFY=SUCCESS,FAILURE",),
    )
    assert code == 250
    dump = _sink_dump(wirings, "dsn-before")
    (mail_args,) = [ln for ln in dump.split(b"\n") if ln.startswith(b"X-Mail-Args: ")]
    assert b" RET=HDRS" in mail_args
    assert b" ENVID=Dsn+2BCase" in mail_args  # case kept through Tocsin and Postfix
    (rcpt_args,) = [ln for ln in dump.split(b"\n") if ln.startswith(b"X-Rcpt-Args: ")]
    assert b" NOTIFY=SUCCESS,FAILURE" in rcpt_args


def _sink_dump(stack: Wirings, tag: str) -> bytes:
    _delivered(stack, tag)
    for path in stack.postfix.sink_dir.iterdir():
        data = path.read_bytes()
        if f"X-Test-Case: {tag}\n".encode() in data:
            return data
    raise AssertionError(tag)


def test_the_same_messages_come_out_the_same_from_milter_and_smtp_filter(
    wirings: Wirings,
) -> None:
    cases = [(HAM, "user@example.net"), (LURE, "victim@tag.test")]
    for index, (raw, rcpt) in enumerate(cases):
        outputs = {}
        for name, port in (
            ("milter", wirings.milter_entry),
            ("before", wirings.before_entry),
            ("after", wirings.after_entry),
        ):
            tag = f"same-{index}-{name}"
            assert _send(port, _tagged(raw, tag), rcpt)[0] == 250
            outputs[name] = _without_trace(_delivered(wirings, tag)).replace(tag.encode(), b"TAG")
        assert outputs["before"] == outputs["milter"]
        assert outputs["after"] == outputs["milter"]
    stored_before = len(list(wirings.quarantine_dir.glob("**/*.eml")))
    for name, port in (
        ("milter", wirings.milter_entry),
        ("before", wirings.before_entry),
        ("after", wirings.after_entry),
    ):
        assert _send(port, _tagged(LURE, f"quar-{name}"), "victim@example.net")[0] == 250
    time.sleep(2)
    for name in ("milter", "before", "after"):
        assert _not_delivered(wirings, f"quar-{name}", wait=0)
    assert wirings.tocsin_log().count("action=quarantine") >= 3
    assert len(list(wirings.quarantine_dir.glob("**/*.eml"))) >= stored_before


def test_tocsin_down_keeps_the_mail_in_postfix_until_it_is_back(wirings: Wirings) -> None:
    stop_tocsin(wirings.tocsin)
    try:
        code, _ = _send(wirings.before_entry, _tagged(HAM, "down-before"), "user@example.net")
        assert 400 <= code < 500  # the sender keeps it and retries
        code, _ = _send(wirings.after_entry, _tagged(HAM, "down-after"), "user@example.net")
        assert code == 250  # queued by Postfix ...
        deferred = re.compile(r"status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]")
        deadline = time.monotonic() + 30
        while not deferred.search(wirings.postfix.log()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert deferred.search(wirings.postfix.log()), wirings.postfix.log()[-2000:]
        assert _not_delivered(wirings, "down-after", wait=0)
    finally:
        wirings.start_tocsin()
    assert _delivered(wirings, "down-after", timeout=60)  # delivered once Tocsin is back
    assert _send(wirings.before_entry, _tagged(HAM, "up-before"), "user@example.net")[0] == 250

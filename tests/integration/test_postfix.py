"""Real Postfix 3.7 → tocsin serve → smtp-sink: what a mail admin would see."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, MailStack, start_tocsin, stop_tocsin
from tests.support.postfix import strip_sink_headers

pytestmark = pytest.mark.system

EXAMPLES = ROOT / "docs" / "examples"
LURE = (EXAMPLES / "cpf-lure.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
HAM = (EXAMPLES / "legit-notice.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _with_id(raw: bytes, tag: str) -> bytes:
    """A copy with a unique Message-ID, to find it in the sink and the logs."""
    return raw.replace(b"\r\n\r\n", f"\r\nX-Test-Case: {tag}\r\n\r\n".encode(), 1)


def _delivered(stack: MailStack, tag: str, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in stack.postfix.sink_dir.iterdir():
            data = path.read_bytes()
            if f"X-Test-Case: {tag}".encode() in data:
                return strip_sink_headers(data).replace(b"\r\n", b"\n")
        stack.postfix.flush()
        time.sleep(0.2)
    raise AssertionError(f"{tag} not delivered\n{stack.postfix.log()[-2500:]}")


def _headers(raw: bytes) -> list[tuple[str, str]]:
    msg = message_from_bytes(raw, policy=policy.compat32)
    return [(k, str(v)) for k, v in msg.items()]


def test_ham_arrives_byte_identical_apart_from_added_headers(mail_stack: MailStack) -> None:
    sent = _with_id(HAM, "ham-1")
    code, _ = mail_stack.postfix.send(sent, "notices@example.org", ["user@example.net"])
    assert code == 250
    got = _delivered(mail_stack, "ham-1")
    head, _, body = got.partition(b"\n\n")
    sent_head, _, sent_body = sent.replace(b"\r\n", b"\n").partition(b"\n\n")
    assert body == sent_body + b"\n"  # smtp-sink ends its dump file with one extra newline
    headers = _unfolded(head)
    assert headers[0].startswith(b"Received: from mx.test.invalid")  # smtp-sink's own
    assert headers[1].startswith(b"Received: from client.test")  # Postfix's, hidden from us
    lines = headers[2:]
    # our Authentication-Results sits right below Postfix's Received (INSHEADER index shift)
    assert lines[0].startswith(b"Authentication-Results: mx.test.invalid;")
    added = [
        ln for ln in lines if ln.startswith((b"X-Tocsin-Verdict:", b"Authentication-Results:"))
    ]
    assert any(b"verdict=accept" in ln for ln in added)
    assert any(b"mx.test.invalid;" in ln and b"spf=pass" in ln for ln in added)
    # drop Postfix's Received (and its folded lines) and our headers: the rest is the original
    kept = b"\n".join(
        ln for ln in lines if not ln.startswith((b"X-Tocsin-Verdict:", b"Authentication-Results:"))
    )
    # Postfix itself drops Return-Path (message_drop_headers), with or without a milter
    original = [ln for ln in _unfolded(sent_head) if not ln.lower().startswith(b"return-path:")]
    assert kept == b"\n".join(original)


def _unfolded(head: bytes) -> list[bytes]:
    out: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += b"\n" + line
        else:
            out.append(line)
    return out


def test_tagged_lure_gets_banner_defanged_link_subject_and_headers(mail_stack: MailStack) -> None:
    code, _ = mail_stack.postfix.send(
        _with_id(LURE, "tag-1"), "s12345@school.example", ["victim@tag.test"]
    )
    assert code == 250
    got = _delivered(mail_stack, "tag-1")
    msg = message_from_bytes(got, policy=policy.default)
    assert str(msg["Subject"]).startswith("[SUSPECT]")
    assert "verdict=tag" in str(msg["X-Tocsin-Verdict"])
    assert "brand=cpf" in str(msg["X-Tocsin-Verdict"])
    texts = [part.get_content() for part in msg.walk() if part.get_content_maintype() == "text"]
    assert texts
    assert all("Tocsin" in text for text in texts), "every text part carries the banner"
    html = "\n".join(t for t in texts if "<" in t)
    # the lookalike link no longer points at the lookalike host
    assert not re.search(r'href="https?://(www\.)?bing\.com/ck', html)
    assert "moncompteformation-gouv" in html  # still visible to the reader, defanged


def test_reject_gives_550_to_the_smtp_client(mail_stack: MailStack) -> None:
    code, text = mail_stack.postfix.send(
        _with_id(LURE, "rej-1"), "s12345@school.example", ["victim@reject.test"]
    )
    assert code == 550
    assert b"5.7.1" in text
    assert b"impersonation" in text


def test_hold_mode_puts_the_lure_in_the_postfix_hold_queue(mail_stack: MailStack) -> None:
    code, _ = mail_stack.postfix.send(
        _with_id(LURE, "hold-1"), "s12345@school.example", ["victim@hold.test"]
    )
    assert code == 250
    deadline = time.monotonic() + 20
    while (
        "milter triggers HOLD action" not in mail_stack.postfix.log()
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert "milter triggers HOLD action" in mail_stack.postfix.log()
    assert re.search(r"^[0-9A-F]+!", mail_stack.postfix.queue(), re.MULTILINE), (
        mail_stack.postfix.queue()
    )


def test_store_mode_quarantines_then_release_delivers(mail_stack: MailStack) -> None:
    code, _ = mail_stack.postfix.send(
        _with_id(LURE, "store-1"), "s12345@school.example", ["victim@example.net"]
    )
    assert code == 250
    qdir = str(mail_stack.quarantine_dir)
    listing = subprocess.run(
        [sys.executable, "-m", "milter", "quarantine", "list", "--json", "--dir", qdir],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    ids = re.findall(r'"id": "([^"]+)"', listing)
    assert ids, listing
    assert "discard" in mail_stack.postfix.log().lower()
    relay = f"127.0.0.1:{mail_stack.postfix.reinject_port}"
    release = subprocess.run(
        [sys.executable, "-m", "milter", "quarantine", "release", ids[-1],
         "--dir", qdir, "--relay", relay],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert release.returncode == 0, release.stderr
    got = _delivered(mail_stack, "store-1")
    assert b"X-Tocsin-Released:" in got


def test_with_tocsin_stopped_postfix_answers_4xx_and_keeps_the_mail(mail_stack: MailStack) -> None:
    stop_tocsin(mail_stack.tocsin)
    try:
        code, text = mail_stack.postfix.send(
            _with_id(HAM, "down-1"), "notices@example.org", ["user@example.net"]
        )
        assert 400 <= code < 500, (code, text)
    finally:
        policy_dir = Path(mail_stack.log_path.parent / "policies")
        mail_stack.tocsin = start_tocsin(
            mail_stack.milter_port, policy_dir, mail_stack.quarantine_dir,
            _nameserver(mail_stack), mail_stack.log_path,
        )  # fmt: skip
    code, _ = mail_stack.postfix.send(
        _with_id(HAM, "up-again"), "notices@example.org", ["user@example.net"]
    )
    assert code == 250


def _nameserver(stack: MailStack) -> str:
    return str(stack.tocsin.args[stack.tocsin.args.index("--nameserver") + 1])  # type: ignore[union-attr]

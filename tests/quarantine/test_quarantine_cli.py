"""``tocsin quarantine`` as an admin runs it: real subprocesses, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from milter.actions.banner import HTML_START, PLAIN_START
from milter.model.envelope import Envelope
from milter.quarantine import QuarantineStore
from milter.quarantine.ids import new_id
from tests.quarantine.conftest import Sink

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    b'From: "Ameli\x1b[31m" <alerte@ameli-rembourse.fr>\r\n'
    b"To: agent@mairie.fr\r\n"
    b"Subject: Urgent \x1b]0;pwned\x07\x1b[2J =?utf-8?b?4oCu?=fdp.exe\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Connectez-vous sur https://ameli-rembourse.fr/connexion \x1b[5m maintenant\r\n"
    b"--b\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b'<p>Bonjour <a href="https://ameli-rembourse.fr/login">https://www.ameli.fr</a></p>'
    b"<script>document.write('x')</script>\r\n"
    b"--b\r\n"
    b'Content-Type: application/pdf; name="remboursement.pdf"\r\n'
    b'Content-Disposition: attachment; filename="remboursement.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--b--\r\n"
)
VERDICT = {
    "verdict": "quarantine",
    "brand": "ameli",
    "score": 14.0,
    "reasons": [{"rule": "brand-lookalike", "disposition": "quarantine", "text": "lookalike"}],
    "findings": [
        {
            "code": "LINK_LOOKALIKE",
            "check": "links",
            "severity": "high",
            "brand": "ameli",
            "text": "https://ameli-rembourse.fr imitates ameli.fr",
            "evidence": {"host": "ameli-rembourse.fr"},
        }
    ],
}
ENV = Envelope(mail_from="", rcpts=("agent@mairie.fr",), client_ip="192.0.2.9")


def tocsin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "milter", "quarantine", *args],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def store(tmp_path: Path) -> QuarantineStore:
    return QuarantineStore(tmp_path / "q")


def test_show_of_a_hostile_message_never_reaches_the_terminal_raw(
    store: QuarantineStore,
) -> None:
    qid = store.put(HOSTILE, ENV, VERDICT)
    result = tocsin("show", "--dir", str(store.directory), qid)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode("utf-8")
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\u202e" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out  # shown, escaped
    assert "\\u202efdp.exe" in out
    # links are defanged everywhere, the HTML is text only (no markup, no script)
    assert "https://" not in out
    assert "hxxps://ameli-rembourse[.]fr/login" in out
    assert "hxxps://ameli-rembourse[.]fr/connexion" in out
    assert "<a " not in out
    assert "document.write" not in out
    assert "Bonjour" in out
    # envelope, verdict, attachments
    assert "envelope from: <>" in out
    assert "LINK_LOOKALIKE" in out
    assert "remboursement.pdf" in out
    assert "application/pdf" in out


def test_show_json_is_ascii_and_escapes_controls(store: QuarantineStore) -> None:
    qid = store.put(HOSTILE, ENV, VERDICT)
    result = tocsin("show", "--json", "--dir", str(store.directory), qid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii()
    assert b"\x1b" not in result.stdout
    data = json.loads(result.stdout)
    assert data["record"]["id"] == qid
    assert data["record"]["envelope"]["mail_from"] == ""
    assert data["message"]["attachments"][0]["filename"] == "remboursement.pdf"
    assert all("https://" not in link["url"] for link in data["message"]["links"])


def test_show_raw_dumps_the_exact_bytes(store: QuarantineStore) -> None:
    qid = store.put(HOSTILE, ENV, VERDICT)
    result = tocsin("show", "--raw", "--dir", str(store.directory), qid)
    assert result.returncode == 0, result.stderr
    assert result.stdout == HOSTILE


@pytest.mark.parametrize("bad", ["../../../etc/passwd", "nope", new_id(datetime.now(UTC))])
def test_show_of_a_bad_or_unknown_id_is_exit_3(store: QuarantineStore, bad: str) -> None:
    result = tocsin("show", "--dir", str(store.directory), bad)
    assert result.returncode == 3
    assert result.stdout == b""
    assert result.stderr.decode().count("\n") == 1
    assert b"Traceback" not in result.stderr


def test_list_filters_and_json(store: QuarantineStore) -> None:
    now = datetime.now(UTC)
    old = store.put(HOSTILE, ENV, VERDICT, received_at=now - timedelta(days=3))
    cpf = store.put(
        b"Subject: CPF\r\n\r\nx\r\n",
        Envelope(mail_from="a@b.fr", rcpts=("rh@ville.fr",)),
        {"verdict": "quarantine", "brand": "cpf"},
    )
    human = tocsin("list", "--dir", str(store.directory))
    assert human.returncode == 0, human.stderr
    lines = human.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines] == [cpf, old]
    assert b"\x1b" not in human.stdout

    by_brand = tocsin("list", "--json", "--brand", "cpf", "--dir", str(store.directory))
    assert [json.loads(x)["id"] for x in by_brand.stdout.splitlines()] == [cpf]
    recent = tocsin("list", "--json", "--since", "1d", "--dir", str(store.directory))
    assert [json.loads(x)["id"] for x in recent.stdout.splitlines()] == [cpf]
    by_rcpt = tocsin("list", "--json", "--rcpt", "@mairie.fr", "--dir", str(store.directory))
    assert [json.loads(x)["id"] for x in by_rcpt.stdout.splitlines()] == [old]


def test_the_directory_comes_from_the_environment(store: QuarantineStore) -> None:
    qid = store.put(HOSTILE, ENV, VERDICT)
    result = tocsin("list", env={"TOCSIN_QUARANTINE_DIR": str(store.directory)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(qid)


def test_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    result = tocsin("list", "--dir", str(tmp_path / "absent"))
    assert result.returncode == 6
    assert b"no quarantine directory" in result.stderr
    assert not (tmp_path / "absent").exists()


def test_delete_and_purge(store: QuarantineStore) -> None:
    now = datetime.now(UTC)
    old = store.put(HOSTILE, ENV, VERDICT, received_at=now - timedelta(days=45))
    young = store.put(HOSTILE, ENV, VERDICT)
    other = store.put(HOSTILE, ENV, VERDICT)

    dry = tocsin("purge", "--older-than", "30d", "--dry-run", "--dir", str(store.directory))
    assert dry.returncode == 0
    assert len(store.ids()) == 3
    purged = tocsin("purge", "--older-than", "30d", "--dir", str(store.directory))
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.decode().split(":")[0] == old
    assert sorted(store.ids()) == sorted([young, other])

    deleted = tocsin("delete", young, new_id(now), "--dir", str(store.directory))
    assert deleted.returncode == 3  # the unknown id; the known one is still deleted
    assert store.ids() == [other]

    bad = tocsin("purge", "--older-than", "soon", "--dir", str(store.directory))
    assert bad.returncode == 2


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milter",
        "quarantine",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_release_through_the_cli(store: QuarantineStore, sink: Sink) -> None:
    qid = store.put(HOSTILE, ENV, VERDICT)
    relay = f"127.0.0.1:{sink.port}"
    code, out, err = await run_cli(
        "release", qid, "--false-positive", "--relay", relay, "--dir", str(store.directory)
    )
    assert code == 0, err
    assert f"{qid}: released via {relay}: 250" in out
    assert sink.received[0].mail_from == "<>"
    assert sink.received[0].content.endswith(HOSTILE)  # a false positive: as it arrived
    assert store.get(qid).status == "released"

    code, out, err = await run_cli("release", qid, "--relay", relay, "--dir", str(store.directory))
    assert code == 7
    assert "already released" in err


async def test_an_impersonation_released_through_the_cli_keeps_the_banner(
    store: QuarantineStore, sink: Sink
) -> None:
    qid = store.put(HOSTILE, ENV, VERDICT)
    relay = f"127.0.0.1:{sink.port}"
    code, out, err = await run_cli("release", qid, "--relay", relay, "--dir", str(store.directory))
    assert code == 0, err
    assert f"{qid}: released with the warning banner via {relay}: 250" in out
    content = sink.received[0].content
    head, _, body = content.partition(b"\r\n\r\n")
    assert b"X-Tocsin-Release-Token: " + qid.encode() in head
    assert head.endswith(HOSTILE.partition(b"\r\n\r\n")[0])  # headers as held
    assert PLAIN_START.encode() in body
    assert HTML_START.encode() in body
    assert b"Assurance Maladie" in body
    assert b"JVBERi0xLjQK\r\n" in body  # the attachment untouched
    [entry] = [e for e in store.audit_trail(qid, 10) if e.action == "release"]
    assert entry.result == "ok"


async def test_a_release_with_a_broken_policy_releases_nothing(
    store: QuarantineStore, sink: Sink, tmp_path: Path
) -> None:
    policies = tmp_path / "broken"
    policies.mkdir()
    (policies / "local.yaml").write_text("banners: [not, a, mapping]\n")
    qid = store.put(HOSTILE, ENV, VERDICT)
    relay = f"127.0.0.1:{sink.port}"
    common = ("--relay", relay, "--dir", str(store.directory), "--policy", str(policies))
    code, _out, err = await run_cli("release", qid, *common)
    assert code == 2
    assert "nothing released" in err
    assert "--false-positive" in err
    assert "Traceback" not in err
    assert sink.received == []
    assert store.get(qid).status == "held"
    code, _out, err = await run_cli("release", qid, "--false-positive", *common)  # no policy needed
    assert code == 0, err
    assert sink.received[0].content.endswith(HOSTILE)


async def test_a_refused_release_through_the_cli_is_exit_7_and_held(
    store: QuarantineStore, sink: Sink
) -> None:
    sink.refuse["agent@mairie.fr"] = "550 5.1.1 unknown user"
    qid = store.put(HOSTILE, ENV, VERDICT)
    code, out, err = await run_cli(
        "release",
        qid,
        "--delete",
        "--relay",
        f"127.0.0.1:{sink.port}",
        "--dir",
        str(store.directory),
    )
    assert code == 7
    assert "still held" in err
    assert "550 5.1.1 unknown user" in err
    assert out == ""
    assert store.get(qid).status == "held"
    assert sink.transactions == 0


async def test_config_gives_directory_and_relay_and_every_action_is_audited(
    store: QuarantineStore, sink: Sink, tmp_path: Path
) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text(
        f"quarantine:\n  directory: {store.directory}\n  relay: 127.0.0.1:{sink.port}\n"
    )
    qid = store.put(HOSTILE, ENV, VERDICT)
    gone = store.put(HOSTILE, ENV, VERDICT)

    code, out, err = await run_cli("list", "--config", str(config))
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith(qid))
    assert "Ameli\\x1b[31m <alerte@ameli-rembourse.fr>" in line  # display name, escaped
    assert "  ameli  14  " in line  # brand and score

    code, out, err = await run_cli("release", qid, "--config", str(config))
    assert code == 0, err
    assert len(sink.received) == 1  # the settings' relay, not the default 10026
    code, out, err = await run_cli("delete", gone, "--config", str(config))
    assert code == 0, err

    code, out, err = await run_cli("audit", "--json", "--config", str(config))
    assert code == 0, err
    trail = [json.loads(x) for x in out.splitlines()]
    assert [(e["action"], e["qid"], e["result"]) for e in trail] == [
        ("delete", gone, "ok"),
        ("release", qid, "ok"),
    ]
    assert all(e["actor"].startswith("cli:") for e in trail)
    assert "250" in trail[1]["detail"]


async def test_a_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text("quarantine:\n  relay: nowhere\n")
    code, _out, err = await run_cli("list", "--config", str(config))
    assert code == 6
    assert "quarantine.relay" in err
    assert "Traceback" not in err

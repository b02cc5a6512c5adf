"""tocsin replay over real mail read in place: the shared corpus, mbox files and Maildirs."""

from __future__ import annotations

import json
import mailbox
import subprocess
from pathlib import Path

import pytest

from milter.ops.mailsources import iter_messages, looks_like_message
from milter.ops.replay import ReplayRow, ReplaySummary
from tests.conftest import EXAMPLES
from tests.support.cli import run_tocsin

STRICTER = "scoring:\n  thresholds: {tag: 1, quarantine: 6}\n"


def tocsin(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tocsin(*args, timeout=600)


@pytest.fixture
def stricter(tmp_path: Path) -> Path:
    folder = tmp_path / "stricter"
    folder.mkdir()
    (folder / "scoring.yaml").write_text(STRICTER)
    return folder


def test_replay_of_the_corpus_prints_tables_progress_and_differences(
    corpus: Path, stricter: Path
) -> None:
    result = tocsin("replay", str(corpus), "--against", str(stricter), "--progress", "always")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for title in ("Verdicts", "Brands × verdicts", "Slowest messages", "Differences A → B"):
        assert title in out
    assert "━" in result.stderr  # the progress bar
    assert "messages" in result.stderr
    assert "Traceback" not in result.stderr
    summary = out.strip().splitlines()[-1]
    count = int(summary.split()[0])
    assert count > 2000  # phish-fr, ham and robustness; README, yml and word lists skipped
    assert "0 unreadable" in summary
    # a difference line shows both verdicts and the input
    assert "(score)" in out.split("Differences A → B")[1]
    assert "/phish-fr/" in out.split("Differences A → B")[1]


def test_replay_json_differences_match_scan(corpus: Path, stricter: Path) -> None:
    folder = corpus / "phish-fr"
    result = tocsin("replay", str(folder), "--against", str(stricter), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["messages"] == sum(report["verdicts"].values())
    assert report["messages"] == sum(report["against_verdicts"].values())
    assert report["against"][-1].startswith(str(stricter))
    assert report["differences"], "a stricter policy must change some verdicts"
    first = report["differences"][0]
    assert first["verdict"] != first["against"]["verdict"]
    scanned = tocsin("scan", "--json", "--policy", str(stricter), first["input"])
    assert json.loads(scanned.stdout)["verdict"] == first["against"]["verdict"]
    assert len(report["slowest"]) == 10
    times = [row["elapsed_ms"] for row in report["slowest"]]
    assert times == sorted(times, reverse=True)


def test_mbox_maildir_and_folders_are_read_in_place(tmp_path: Path) -> None:
    lure = (EXAMPLES / "cpf-lure.eml").read_bytes()
    legit = (EXAMPLES / "legit-notice.eml").read_bytes()
    box = mailbox.mbox(tmp_path / "archive.mbox")
    for raw in (lure, legit, legit):
        box.add(raw)
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(lure)
    maildir.add(legit)
    (tmp_path / "README.md").write_text("# notes\nnot a message\n")
    (tmp_path / "domains.txt").write_text("ameli.fr\nimpots.gouv.fr\n")
    items = list(iter_messages([tmp_path]))
    labels = [item.label for item in items]
    assert len(items) == 5
    assert f"{tmp_path}/archive.mbox:3" in labels
    assert sum(1 for label in labels if label.startswith(f"{tmp_path}/Maildir/")) == 2
    assert not any("README" in label or "domains" in label for label in labels)
    result = tocsin("replay", str(tmp_path), "--json")
    report = json.loads(result.stdout)
    assert report["messages"] == 5
    assert report["verdicts"]["quarantine"] == 2  # the CPF lure, in the mbox and the Maildir
    assert report["brands"]["cpf"] == {"quarantine": 2}


def test_unreadable_input_is_reported_and_the_rest_replayed(tmp_path: Path) -> None:
    result = tocsin("replay", str(EXAMPLES), str(tmp_path / "missing.eml"), "--json")
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["messages"] == len(list(EXAMPLES.glob("*.eml")))  # every example replayed
    assert report["unreadable"][0]["input"].endswith("missing.eml")
    assert "missing.eml: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_header_sniffing_tells_mail_from_notes() -> None:
    assert looks_like_message(b"Received: from x\r\n\tby y\r\nSubject: hi\r\n\r\nbody")
    assert not looks_like_message(b"# Test material\n\nSome text: here\n")
    assert not looks_like_message(b"ameli.fr\nimpots.gouv.fr\n")
    assert not looks_like_message(b"- name: x\n  when: y\n")


def test_summary_keeps_only_the_slowest() -> None:
    summary = ReplaySummary(keep=2)
    for ms in (5.0, 50.0, 1.0, 20.0):
        summary.add(ReplayRow(f"m{ms}", "accept", None, 0.0, "score", ms))
    assert [row.elapsed_ms for row in summary.slowest] == [50.0, 20.0]
    assert summary.messages == 4
    assert summary.as_dict()["brands"] == {"-": {"accept": 4}}

"""The tocsin command as admins and scripts use it: real subprocesses, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES


def tocsin(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "milter", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_scan_json_has_the_contract_fields() -> None:
    result = tocsin("scan", "--json", str(EXAMPLES / "cpf-lure.eml"))
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout.splitlines()[0])
    assert {"file", "verdict", "brand", "findings", "auth", "edits"} <= set(obj)
    assert obj["verdict"] == "quarantine"
    assert obj["brand"] == "cpf"
    assert all({"code", "severity", "brand", "evidence"} <= set(f) for f in obj["findings"])


def test_scan_write_outputs_the_delivered_message(tmp_path: Path) -> None:
    result = tocsin("scan", "--write", str(tmp_path), str(EXAMPLES / "legit-notice.eml"))
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "legit-notice.eml").read_bytes()
    assert b"X-Tocsin-Verdict: v=1; verdict=accept" in written
    assert "ACCEPT" in result.stdout


def test_missing_file_is_one_line_and_exit_3() -> None:
    result = tocsin("scan", "/nonexistent/message.eml")
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0
    assert "No such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_policy_check_lists_errors_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("brands:\n  ameli:\n    domains: [bad..domain]\n")
    result = tocsin("policy", "check", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / 'b.yaml'}:3: brands.ameli.domains[0]:" in result.stdout
    assert "Traceback" not in result.stderr


def test_policy_check_ok_and_show_effective() -> None:
    assert tocsin("policy", "check").returncode == 0
    shown = tocsin("policy", "show")
    assert shown.returncode == 0
    assert "moncompteformation.gouv.fr" in shown.stdout


def test_scan_with_bad_policy_exits_4(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("nonsense: 1\n")
    result = tocsin("scan", "--policy", str(tmp_path), str(EXAMPLES / "cpf-lure.eml"))
    assert result.returncode == 4
    assert "nonsense: unknown key" in result.stderr


def test_lookalike_reads_stdin_and_answers_json() -> None:
    result = tocsin("lookalike", "--json", "-", stdin="www.ameli.fr\nexample.com\n")
    assert result.returncode == 0
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert answers[0]["technique"] == "official"
    assert answers[0]["brand"] == "ameli"
    assert answers[1]["brand"] is None
    combo = json.loads(tocsin("lookalike", "--json", "ameli-remboursement.fr").stdout)
    assert combo["technique"] == "combosquat"
    assert combo["imitates"] == "ameli.fr"


def test_version() -> None:
    result = tocsin("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("tocsin ")

"""The tocsin command as admins and scripts use it: real subprocesses, real exit codes."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    errors = [line for line in result.stderr.splitlines() if "/nonexistent/" in line]
    assert errors == ["tocsin: /nonexistent/message.eml: No such file or directory"]
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


def tocsin_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run tocsin with stdout a pipe whose reader is already gone (`tocsin … | head -0`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "milter", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [("policy", "show"), ("scan", str(EXAMPLES / "cpf-lure.eml")), ("manpage",)],
    ids=["policy-show", "scan", "manpage"],
)
def test_closed_pipe_is_no_traceback(args: tuple[str, ...]) -> None:
    result = tocsin_into_closed_pipe(*args)
    assert "Traceback" not in result.stderr
    assert "BrokenPipe" not in result.stderr
    assert result.returncode == 141


def test_head_of_policy_show_through_a_shell_pipe() -> None:
    result = subprocess.run(
        ["/bin/sh", "-c", f"{sys.executable} -m milter policy show | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.startswith("# effective policy from:")
    assert result.stderr == ""


def _options_without_help(parser: argparse.ArgumentParser, name: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                missing += _options_without_help(sub, f"{name} {sub_name}")
        elif not action.help and not isinstance(action, argparse._HelpAction):
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_has_help() -> None:
    from milter.cli import build_parser

    assert _options_without_help(build_parser(), "tocsin") == []


def test_top_level_help_is_for_admins() -> None:
    result = tocsin("--help")
    assert result.returncode == 0
    assert "keep it stable" not in result.stdout
    assert "``" not in result.stdout
    for command in ("scan", "serve", "quarantine", "policy", "manpage"):
        assert command in result.stdout
    assert "services publics" in result.stdout


def test_manpage_is_generated_from_the_parser() -> None:
    result = tocsin("manpage")
    assert result.returncode == 0, result.stderr
    page = result.stdout
    assert page.startswith('.TH TOCSIN "1"')
    for needle in ("\\-\\-exit\\-code", "\\-\\-quarantine\\-dir", "EXIT STATUS", "SEE ALSO"):
        assert needle in page
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff not installed: the roff was checked as text only")
    rendered = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z"],
        input=page,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0
    assert rendered.stderr == ""


def test_scan_says_it_ran_offline() -> None:
    result = tocsin("scan", str(EXAMPLES / "cpf-lure.eml"))
    assert result.returncode == 0
    assert "auth not evaluated (offline" in result.stdout
    assert "n'a pas été évaluée" in result.stderr
    assert "add --dns" in result.stderr
    as_json = json.loads(tocsin("scan", "--json", str(EXAMPLES / "cpf-lure.eml")).stdout)
    assert as_json["auth_evaluated"] is False


def test_scan_exit_code_reflects_the_verdict() -> None:
    lure, legit = str(EXAMPLES / "cpf-lure.eml"), str(EXAMPLES / "legit-notice.eml")
    assert tocsin("scan", "--exit-code", legit).returncode == 0
    assert tocsin("scan", "--exit-code", lure).returncode == 11  # quarantine
    assert tocsin("scan", "--exit-code", legit, lure).returncode == 11  # the harshest
    assert tocsin("scan", lure).returncode == 0  # only on request
    assert tocsin("scan", "--exit-code", lure, "/nonexistent.eml").returncode == 3


def test_every_option_is_in_docs_cli_md() -> None:
    from milter.cli import build_parser

    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    # quarantine and review are documented by their owners in the same file, in their
    # own shape (a table of sub-commands); checked here: the commands of this module set
    for name in ("scan", "lookalike", "serve", "replay", "status", "reload", "stats", "policy"):
        assert f"## `tocsin {name}" in doc, name
        stack = [commands.choices[name]]
        while stack:
            sub = stack.pop()
            for action in sub._actions:
                if isinstance(action, argparse._SubParsersAction):
                    stack.extend(action.choices.values())
                for option in action.option_strings:
                    if option.startswith("--") and option != "--help" and f"`{option}" not in doc:
                        missing.append(f"{name} {option}")
    assert missing == []

"""Smoke test of the load benchmark: a handful of messages through the whole harness.

The benchmark itself stays out of the test run; this checks that its corpus means what it
says (genuine brand mail authenticates against the generated DNS zone, spoofs and
lookalikes do not) and that one tiny run prints its table. No timing is asserted.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from benchmarks.harness.corpus import Keys, generate, make_keys, zone
from benchmarks.milter_load import (
    Row,
    reference_line,
    smtp_stall_check,
    stall_check,
    throughput_targets,
)
from milter.dns.stub import DnsResolver
from milter.engine import scan
from milter.model.auth import AuthStatus
from milter.model.envelope import Envelope
from milter.policy.model import Policy
from tests.support.dnsserver import DnsTestServer
from tests.support.scripts import run_script

pytest.importorskip(
    "authres",
    reason="the corpus ARC-seals list mail with dkimpy, which needs authres: "
    "reinstall with pip install -e '.[test]'",
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


def test_corpus_is_deterministic(keys: Keys) -> None:
    first = generate(25, seed=7, keys=keys)
    assert [m.raw for m in generate(25, seed=7, keys=keys)] == [m.raw for m in first]
    assert [m.raw for m in generate(25, seed=8, keys=keys)] != [m.raw for m in first]
    unique = generate(25, seed=7, keys=keys, unique="u")
    assert len({m.mail_from for m in unique}) == 25  # every envelope domain its own


@pytest.mark.parametrize("unique", [None, "u"])
async def test_corpus_authenticates_as_labelled(
    keys: Keys, policy: Policy, unique: str | None
) -> None:
    messages = generate(40, seed=3, keys=keys, unique=unique)
    kinds = {m.kind for m in messages}
    assert {"brand", "spoof", "lookalike", "newsletter"} <= kinds
    with DnsTestServer(zone(keys, messages)) as server:
        resolver = DnsResolver([server.address], timeout=2)
        for message in messages:
            envelope = Envelope(
                client_ip=message.client_ip,
                helo=message.helo,
                mail_from=message.mail_from,
                rcpts=(message.rcpt,),
            )
            verdict = (await scan(message.raw, envelope, policy, resolver)).verdict
            results = {(a.method, a.result) for a in verdict.auth}
            if message.kind in ("brand", "newsletter", "arc"):
                assert ("dkim", AuthStatus.PASS) in results, (message.kind, verdict.auth)
                assert ("dmarc", AuthStatus.PASS) in results, (message.kind, verdict.auth)
            if message.kind == "arc":
                assert ("arc", AuthStatus.PASS) in results, verdict.auth
            if message.kind in ("spoof", "lookalike"):
                assert str(verdict.disposition) != "accept", (message.kind, verdict.findings)


def test_harness_prints_its_table(tmp_path: Path) -> None:
    """Six messages per pass, C=1, two rounds, no Postfix: every system gets a row per
    round (the second in reverse order), Tocsin uncached one, no errors."""
    lines = run_script(
        "benchmarks/milter_load.py",
        "--messages",
        "6",
        "--uncached-messages",
        "3",
        "--warmup",
        "2",
        "--levels",
        "1",
        "--rounds",
        "2",
        "--no-postfix",
        "--rspamd-messages",
        "0",
        "--workdir",
        str(tmp_path),
    )
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["conc", "system"])
    assert lines[header].split()[-1] == "round"
    assert "cpu ms/msg" in lines[header]
    rows = [line.split() for line in lines[header + 1 : header + 8]]
    assert [(*r[1:3], r[-1]) for r in rows] == [
        ("null", "milter", "1"),
        ("tocsin", "cached", "1"),
        ("tocsin-smtp", "cached", "1"),  # the same server through its SMTP filter front-end
        ("tocsin-smtp", "cached", "2"),
        ("tocsin", "cached", "2"),
        ("null", "milter", "2"),
        ("tocsin", "uncached", "1"),
    ]
    for row in rows:
        assert row[0] == "1"
        assert float(row[-5]) >= 0  # cpu ms/msg is a number (not "-") for every server row
    assert any(line.startswith("stall check at C=1: tocsin-smtp") for line in lines)
    assert "through Postfix: skipped (--no-postfix)" in lines
    assert "reference, rspamd: skipped (--rspamd-messages 0)" in lines
    cpu = next(line for line in lines if line.startswith("cpu per message at C=1"))
    assert "tocsin " in cpu
    assert "null milter " in cpu
    assert "2 rounds]" in cpu
    assert any(line.startswith("memory: RSS") for line in lines)


def _row(section: str, system: str, conc: int, rate: float, p10: float, *, round_: int = 1) -> Row:
    dns = "cached" if "tocsin" in system else "-"
    return Row(
        section, system, dns, conc, 10, rate, p10, p10 * 2, p10 * 3, 1.0, 0, 2.0, 1.0, round_
    )


def test_stall_check_flags_a_return_of_the_delayed_ack_stall(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A milter that adds ~45 ms through Postfix beyond its own direct latency at C=1 is
    what the delayed-ACK stall looks like (docs/performance.md): it must be flagged, and
    a milter that adds only its own latency must not."""
    direct = [_row("direct", "null milter", 1, 200, 2.0), _row("direct", "tocsin", 1, 40, 12.0)]
    through = [
        _row("postfix", "postfix", 1, 100, 5.0),
        _row("postfix", "postfix+null", 1, 20, 5.0 + 2.0 + 45.0),  # stalled
        _row("postfix", "postfix+tocsin", 1, 18, 5.0 + 12.0 + 3.0),  # round trips only
    ]
    stall_check(direct, through)
    lines = capsys.readouterr().out.splitlines()
    assert "null milter" in lines[0]
    assert "STALL?" in lines[0]
    assert "tocsin" in lines[1]
    assert "no stall" in lines[1]


@pytest.mark.parametrize(("smtp_p10", "verdict"), [(2.2 + 45.6, "STALL?"), (2.2 + 1.5, "no stall")])
def test_smtp_stall_check_compares_the_smtp_filter_with_the_milter(
    capsys: pytest.CaptureFixture[str], smtp_p10: float, verdict: str
) -> None:
    """The SMTP filter at C=1 ~45 ms over the milter front-end on the same engine (the
    multi-line EHLO reply held by Nagle until the client's delayed ACK) is flagged; its
    own round trips are not."""
    rows = [_row("direct", "tocsin", 1, 160, 2.2), _row("direct", "tocsin-smtp", 1, 18, smtp_p10)]
    smtp_stall_check(rows)
    out = capsys.readouterr().out
    assert out.startswith("stall check at C=1: tocsin-smtp")
    assert verdict in out


def test_targets_line_gives_tocsin_over_the_do_nothing_milter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [
        _row("direct", "null milter", 8, 200, 1),
        _row("direct", "tocsin", 8, 50, 1),
        _row("postfix", "postfix+null", 1, 40, 1),
        _row("postfix", "postfix+tocsin", 1, 36, 1),
    ]
    throughput_targets(rows)
    out = capsys.readouterr().out
    assert "direct C=8 25 % (target 50 %)" in out
    assert "postfix C=1 90 % (target 80 %)" in out


def test_targets_line_gives_the_median_of_same_round_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each round's Tocsin over that round's do-nothing milter, then their median and range:
    not the ratio of medians, nor Tocsin of one round over the milter of another."""
    rows = [
        _row("direct", "null milter", 8, 200, 1, round_=1),
        _row("direct", "tocsin", 8, 40, 1, round_=1),  # 20 %
        _row("direct", "null milter", 8, 100, 1, round_=2),
        _row("direct", "tocsin", 8, 30, 1, round_=2),  # 30 %
        _row("direct", "null milter", 8, 400, 1, round_=3),
        _row("direct", "tocsin", 8, 100, 1, round_=3),  # 25 %
        _row("direct", "tocsin", 8, 999, 1, round_=4),  # no do-nothing in round 4: no ratio
    ]
    throughput_targets(rows)
    out = capsys.readouterr().out
    assert "direct C=8 25 % [20-30, 3 rounds] (target 50 %)" in out


def _rspamd_left(work: Path) -> list[int]:
    """rspamd processes still running on ``work``'s configuration."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"rspamd" in cmdline and str(work).encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(
    shutil.which("rspamd") is None,
    reason="rspamd (Debian package rspamd, installed by .ci/run) is the reference #15 names",
)
def test_rspamd_reference_beside_tocsin(tmp_path: Path) -> None:
    """rspamd as a milter on the same messages as Tocsin, in alternating order per round,
    every message answered (it authenticates the corpus against the same DNS server), the
    line comparing their CPU per message, and rspamd stopped afterwards."""
    lines = run_script(
        "benchmarks/milter_load.py",
        *("--messages", "6", "--uncached-messages", "2", "--warmup", "2", "--levels", "1"),
        *("--rounds", "2", "--no-postfix", "--rspamd-messages", "4", "--rspamd-pcre"),
        *("--workdir", str(tmp_path)),
        timeout=600,
    )
    start = next(i for i, line in enumerate(lines) if line.startswith("reference (Rspamd"))
    assert "4 messages" in lines[start]
    rows = [line.split() for line in lines[start + 1 : start + 5]]
    assert [(r[1], r[2], r[-1]) for r in rows] == [
        ("tocsin", "cached", "1"),
        ("rspamd", "uncached", "1"),
        ("rspamd", "uncached", "2"),
        ("tocsin", "cached", "2"),
    ]
    for row in rows:
        assert row[-4] == "0", row  # no errors: every message got its final reply
        assert float(row[-5]) >= 0  # CPU read from each server's processes (not "-")
    line = next(x for x in lines if x.startswith("reference, tocsin against Rspamd"))
    assert re.search(r"C=1 CPU ms/msg tocsin [\d.]+, rspamd [\d.]+ \(\d+ %\)", line), line
    log = (tmp_path / "rspamd" / "log" / "rspamd.log").read_text(errors="replace")
    assert "R_SPF_ALLOW" in log or "R_DKIM_ALLOW" in log  # it checked the senders, not skipped
    assert not _rspamd_left(tmp_path)


def test_reference_line_takes_medians_per_level(capsys: pytest.CaptureFixture[str]) -> None:
    def row(system: str, conc: int, cpu: float, rate: float, round_: int) -> Row:
        dns = "cached" if system == "tocsin" else "uncached"
        return Row("reference", system, dns, conc, 4, rate, 1, 2, 3, cpu, 0, 2.0, 1.0, round_)

    rows = [
        row("tocsin", 1, 5.0, 100, 1),
        row("rspamd", 1, 20.0, 10, 1),
        row("tocsin", 1, 7.0, 80, 2),
        row("rspamd", 1, 30.0, 20, 2),
        row("tocsin", 1, 6.0, 90, 3),
        row("rspamd", 1, 24.0, 12, 3),
        row("tocsin", 8, 4.0, 300, 1),
        row("rspamd", 8, 16.0, 40, 1),
        Row("direct", "tocsin", "cached", 1, 4, 1, 1, 2, 3, 99.0, 0, 2.0, 1.0, 1),
    ]
    reference_line(rows, "Rspamd daemon version 3.4")
    out = capsys.readouterr().out
    assert out.startswith("reference, tocsin against Rspamd daemon version 3.4")
    assert "C=1 CPU ms/msg tocsin 6.00, rspamd 24.00 (25 %), msg/s 90.0 against 12.0" in out
    assert "C=8 CPU ms/msg tocsin 4.00, rspamd 16.00 (25 %), msg/s 300.0 against 40.0" in out


def test_no_uncached_pass_when_asked_for_none(tmp_path: Path) -> None:
    """--uncached-messages 0 leaves the uncached pass out (it divided by zero before)."""
    lines = run_script(
        "benchmarks/milter_load.py",
        *("--messages", "4", "--uncached-messages", "0", "--warmup", "1", "--levels", "1"),
        *("--no-postfix", "--rspamd-messages", "0", "--workdir", str(tmp_path)),
    )
    rows = [line.split() for line in lines if line[:4].strip() == "1"]
    assert {r[1] for r in rows} == {"null", "tocsin", "tocsin-smtp"}, lines
    assert not [r for r in rows if "uncached" in r]

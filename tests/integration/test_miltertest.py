"""Debian's ``miltertest`` (OpenDKIM project, C + Lua) as an independent milter client.

Each case generates a Lua script that plays the MTA over a real socket against the
Tocsin server and checks the end-of-message actions with ``mt.eom_check``; the script
raises a Lua error (non-zero exit) on any unexpected reply.

Two limits of miltertest 2.11.0~beta2 (Debian 12) shape these scripts: it overflows a
stack buffer (abort, "stack smashing detected") when a milter replaces the body with
more than a few KiB, so the tag case here asks for headers and subject only (body
replacement is covered by real Postfix in test_postfix.py); and
``eom_check(MT_SMTPREPLY, …)`` answers "Invalid argument" for a final REPLYCODE, so the
reject case checks the reply type (its text is checked by Postfix and our own client).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.milter_client import split_message

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        shutil.which("miltertest") is None,
        reason="Debian's miltertest is not installed (the README's test command installs it)",
    ),
]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HOLD_POLICY = "actions:\n  quarantine_store: hold\n"
TAG_POLICY = (
    "actions:\n  tag: [subject_tag]\n"
    "rules:\n  - name: tag-it\n    verdict: tag\n"
    "    before: brand-impersonation\n"
    "    when: {min_severity: high, brand_claimed: true}\n"
)
REJECT_POLICY = (
    "rules:\n  - name: refuse\n    verdict: reject\n"
    "    before: brand-impersonation\n"
    "    when: {min_severity: high, brand_claimed: true}\n"
)


def _lua(text: str) -> str:
    return "[==[" + text + "]==]"


def _script(port: int, raw: bytes, checks: str) -> str:
    headers, body = split_message(raw)
    lines = [
        f'local conn = mt.connect("inet:{port}@127.0.0.1")',
        'if conn == nil then error("cannot connect") end',
        "if mt.negotiate(conn, nil, nil, nil) ~= nil then error('negotiate') end",
        'if mt.conninfo(conn, "mail.example.org", "127.0.0.1") ~= nil then error("conninfo") end',
        'if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo reply") end',
        'if mt.helo(conn, "mail.example.org") ~= nil then error("helo") end',
        'mt.macro(conn, SMFIC_MAIL, "i", "4Q1D2E3F")',
        'if mt.mailfrom(conn, "<s12345@school.example>") ~= nil then error("mail") end',
        'if mt.rcptto(conn, "<victim@example.net>") ~= nil then error("rcpt") end',
    ]
    for name, value in headers:
        # miltertest sends values as given; without HDR_LEADSPC the MTA strips one space
        lines.append(f"mt.header(conn, {_lua(name)}, {_lua(value.removeprefix(' '))})")
    lines += [
        'if mt.eoh(conn) ~= nil then error("eoh") end',
        f"local body = {_lua(body.decode('utf-8', 'replace'))}",
        "if mt.bodystring(conn, body) ~= nil then error('body') end",
        'if mt.eom(conn) ~= nil then error("eom") end',
        checks,
        "mt.disconnect(conn)",
        'mt.echo("ALL CHECKS PASSED")',
    ]
    return "\n".join(lines) + "\n"


async def _run(tmp_path: Path, script: str) -> str:
    path = tmp_path / "case.lua"
    path.write_text(script)
    proc = await asyncio.create_subprocess_exec(
        "miltertest", "-s", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "ALL CHECKS PASSED" in text
    return text


Start = Callable[..., Any]


async def test_ham_is_accepted_with_only_a_verdict_header(
    start_milter: Start, tmp_path: Path
) -> None:
    raw = (EXAMPLES / "legit-notice.eml").read_bytes()
    checks = """
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("ham not accepted") end
if not mt.eom_check(conn, MT_HDRADD, "X-Tocsin-Verdict") then error("no verdict header") end
if mt.eom_check(conn, MT_BODYCHANGE) then error("ham body changed") end
if mt.eom_check(conn, MT_QUARANTINE) then error("ham quarantined") end
"""
    async with start_milter() as milter:
        await _run(tmp_path, _script(milter.port, raw, checks))


async def test_lure_is_held_with_a_reason(
    start_milter: Start, policy_dir: Any, tmp_path: Path
) -> None:
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    checks = """
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("hold must end with accept") end
if not mt.eom_check(conn, MT_QUARANTINE) then error("not quarantined") end
"""
    async with start_milter(policy_dir=policy_dir(HOLD_POLICY)) as milter:
        await _run(tmp_path, _script(milter.port, raw, checks))


async def test_tagged_lure_gets_subject_tag_and_verdict_header(
    start_milter: Start, policy_dir: Any, tmp_path: Path
) -> None:
    raw = (EXAMPLES / "ameli-lure.eml").read_bytes()
    checks = """
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("tag must accept") end
if mt.eom_check(conn, MT_BODYCHANGE) then error("body changed without banner action") end
if not mt.eom_check(conn, MT_HDRCHANGE, "Subject") then error("subject not tagged") end
if not mt.eom_check(conn, MT_HDRADD, "X-Tocsin-Verdict") then error("no verdict header") end
"""
    async with start_milter(policy_dir=policy_dir(TAG_POLICY)) as milter:
        await _run(tmp_path, _script(milter.port, raw, checks))


async def test_reject_sends_a_550_reply(
    start_milter: Start, policy_dir: Any, tmp_path: Path
) -> None:
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    checks = """
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("no reply code") end
"""
    async with start_milter(policy_dir=policy_dir(REJECT_POLICY)) as milter:
        await _run(tmp_path, _script(milter.port, raw, checks))


async def test_store_mode_discards_after_storing(start_milter: Start, tmp_path: Path) -> None:
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    checks = 'if mt.getreply(conn) ~= SMFIR_DISCARD then error("not discarded") end'
    async with start_milter() as milter:
        await _run(tmp_path, _script(milter.port, raw, checks))
        records = milter.store.list()
    assert len(records) == 1
    assert records[0].envelope.queue_id == "4Q1D2E3F"

"""#17 table, one regression test per row: the verdict, and the cap the scan stopped at.

No test here measures time: each asserts what was decided and which limit was recorded
(``LIMIT_EXCEEDED`` with its ``limit`` evidence), or that no limit was needed because
the work is linear (token counts, not seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from milter.actions.apply import apply_plan
from milter.engine import scan
from milter.model.budget import work_budget
from milter.model.envelope import Envelope
from milter.model.limits import LIMIT_EXCEEDED
from milter.model.verdict import Disposition
from milter.policy.loader import load_policy
from milter.policy.model import Policy
from tests.hostile import shapes


def _limits(result_findings: object) -> set[str]:
    return {
        f.evidence.get("limit", "")
        for f in result_findings  # type: ignore[attr-defined]
        if f.code == LIMIT_EXCEEDED
    }


def _codes(result_findings: object) -> set[str]:
    return {f.code for f in result_findings}  # type: ignore[attr-defined]


@pytest.mark.parametrize("unit", ["<a", "<a href=", "<a href='", "<!--", "<![", '<a href="x" '])
async def test_never_closed_tag_flood_is_scanned_and_capped(policy: Policy, unit: str) -> None:
    result = await scan(shapes.never_closed(unit), Envelope(), policy)
    assert result.verdict.disposition is Disposition.QUARANTINE
    assert "LINK_LOOKALIKE" in _codes(result.verdict.findings)
    assert "text" in _limits(result.verdict.findings)  # the part was cut at max_text_chars


@pytest.mark.parametrize("depth", [21, 25, 200, 2000])
async def test_deep_multipart_is_read_to_the_bottom(policy: Policy, depth: int) -> None:
    """Links below depth 20 are read; 2,000 levels (stdlib recursion) fall back to text."""
    result = await scan(shapes.nested(depth, lure_from=False), Envelope(), policy)
    assert "LINK_LOOKALIKE" in _codes(result.verdict.findings)
    assert result.verdict.disposition is Disposition.QUARANTINE
    assert "depth" in _limits(result.verdict.findings)
    assert "limits=depth" in _verdict_header(result)


@pytest.mark.parametrize("filler", [501, 5_000, 20_000])
async def test_a_lure_behind_filler_parts_is_still_read(policy: Policy, filler: int) -> None:
    """Past max_parts the parts are not listed, but their text and HTML are still read:
    the lookalike link after 500+ filler parts is seen (the From is neutral, so only the
    link can give the lure away)."""
    neutral = b"From: Service <contact@example.org>\r\n"
    raw = shapes.many_parts(filler).replace(shapes._FROM, neutral)
    assert b"contact@example.org" in raw
    result = await scan(raw, Envelope(), policy)
    assert "LINK_LOOKALIKE" in _codes(result.verdict.findings)
    assert result.verdict.disposition is not Disposition.ACCEPT
    assert "parts" in _limits(result.verdict.findings)


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
@pytest.mark.parametrize("filler", [5_000, 10_001, 20_000])
async def test_an_encoded_lure_behind_filler_parts_is_decoded(
    policy: Policy, filler: int, encoding: str
) -> None:
    """Past 10,000 parts the tree is abandoned and the body read as text; an HTML part in
    base64 or quoted-printable is still decoded there (it was read encoded, its link
    unseen, and the lure accepted)."""
    neutral = b"From: Service <contact@example.org>\r\n"
    raw = shapes.many_parts(filler, encoding).replace(shapes._FROM, neutral)
    assert shapes.LURE_URL.encode() not in raw  # only decoding shows the link
    result = await scan(raw, Envelope(), policy)
    assert "LINK_LOOKALIKE" in _codes(result.verdict.findings)
    assert result.verdict.disposition is not Disposition.ACCEPT


async def test_an_encoded_lure_below_too_deep_a_tree_is_decoded(policy: Policy) -> None:
    """2,000 levels: the body is read as text, the base64 HTML at the bottom decoded."""
    lure = f'<p>Bonjour : <a href="{shapes.LURE_URL}">ici</a></p>'.encode()
    raw = shapes.nested(2000, shapes.encoded_html(lure, "base64"), lure_from=False)
    assert shapes.LURE_URL.encode() not in raw
    result = await scan(raw, Envelope(), policy)
    assert "LINK_LOOKALIKE" in _codes(result.verdict.findings)
    assert "depth" in _limits(result.verdict.findings)


def _verdict_header(result: object) -> str:
    plan = result.plan  # type: ignore[attr-defined]
    return next((e.value for e in plan.header_edits if e.name.lower() == "x-tocsin-verdict"), "")


@pytest.mark.parametrize(("count", "before_from"), [(1001, False), (10_000, False), (2000, True)])
async def test_header_flood_is_scanned_not_accepted(
    policy: Policy, count: int, before_from: bool
) -> None:
    result = await scan(shapes.header_flood(count, before_from=before_from), Envelope(), policy)
    assert result.verdict.disposition is Disposition.QUARANTINE
    assert "headers" in _limits(result.verdict.findings)


async def test_on_limit_policy_can_refuse_instead(tmp_path: Path) -> None:
    (tmp_path / "local.yaml").write_text("limits:\n  on_limit: {headers: tempfail}\n")
    policy = load_policy(tmp_path)
    result = await scan(shapes.header_flood(1001), Envelope(), policy)
    assert result.verdict.disposition is Disposition.TEMPFAIL
    assert result.verdict.reasons[0].rule == "limit-headers"
    assert result.plan.smtp_reply is not None


async def test_marked_sections_do_not_crash_and_the_link_is_seen(policy: Policy) -> None:
    result = await scan(shapes.marked_sections(), Envelope(), policy)
    assert "CHECK_ERROR" not in _codes(result.verdict.findings)
    assert "LINK_LOOKALIKE" in _codes(result.verdict.findings)
    assert result.verdict.disposition is not Disposition.TEMPFAIL


async def test_invalid_utf8_scans_and_applies(policy: Policy) -> None:
    raw = shapes.invalid_utf8()
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.disposition is Disposition.QUARANTINE
    delivered = apply_plan(raw, result.plan)
    assert b"Rembours\xe9 \xff\xfe\xc3" in delivered  # raw bytes kept, nothing raised


async def test_raw_byte_subject_survives_subject_tagging(tmp_path: Path) -> None:
    """#17: UnicodeEncodeError in apply_plan on a raw-byte Subject when tagging."""
    (tmp_path / "local.yaml").write_text(
        "rules:\n  - name: brand-impersonation\n    replace: true\n"
        "    when: {any: [BRAND_AUTH_FAIL, DISPLAY_NAME_BRAND, FROM_LOOKALIKE]}\n"
        "    verdict: tag\n    actions: [subject_tag]\n"
    )
    policy = load_policy(tmp_path)
    raw = shapes.invalid_utf8()
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.disposition is Disposition.TAG
    delivered = apply_plan(raw, result.plan)
    assert b"\xff\xfe" in delivered.split(b"\r\n\r\n", 1)[0]


def test_scan_json_gives_one_object_per_file_always(tmp_path: Path) -> None:
    files = []
    for name, raw in [
        ("bad.eml", shapes.invalid_utf8()),
        ("deep.eml", shapes.nested(2000)),
        ("flood.eml", shapes.never_closed("<a")),
        ("ok.eml", shapes.lure_html()),
    ]:
        path = tmp_path / name
        path.write_bytes(raw)
        files.append(str(path))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "milter", "scan", "--json", "--write", str(out), *files],
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stdout.decode("utf-8").splitlines()  # valid UTF-8, or this raises
    objects = [json.loads(line) for line in lines]
    assert [Path(o["file"]).name for o in objects] == [Path(f).name for f in files]
    assert all(o.get("verdict") == "quarantine" for o in objects), objects
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(f).name for f in files)


async def test_forged_authres_with_trailing_dot_is_removed(policy: Policy) -> None:
    ours = policy.document.authentication.authserv_id
    raw = (
        f"Authentication-Results: {ours}.; dmarc=pass header.from=ameli.fr\r\n".encode()
        + shapes.lure_html()
    )
    result = await scan(raw, Envelope(), policy)
    delivered = apply_plan(raw, result.plan)
    assert f"{ours}.; dmarc=pass".encode() not in delivered


async def test_a_spent_work_budget_stops_the_loops_and_tempfails(policy: Policy) -> None:
    """The deadline really stops work: the link loops stop at a checkpoint (no clock
    measured: the budget is already spent when the scan starts)."""
    links = "".join(f'<a href="https://x{i}.example/">{i}</a>' for i in range(2000))
    with work_budget(-1):
        result = await scan(shapes.lure_html(links), Envelope(), policy)
    assert "work" in _limits(result.verdict.findings)
    assert result.verdict.disposition is Disposition.TEMPFAIL
    assert result.verdict.reasons[0].rule == "limit-work"


async def test_many_links_stop_at_the_link_cap(policy: Policy) -> None:
    links = "".join(f'<a href="https://x{i}.example/">{i}</a>' for i in range(2500))
    result = await scan(shapes.lure_html(links), Envelope(), policy)
    assert result.verdict.disposition is Disposition.QUARANTINE
    assert "links" in _limits(result.verdict.findings)


BROKEN_WORDS = (
    b"From: =?utf-8?b? =?utf-8?q?=0A?= <badname@example.com>\r\n"
    b"To: =?utf-8?b?Cg==?= <badname@example.com>\r\n\r\nMessage Body\r\n"
)


async def test_a_broken_encoded_word_in_from_is_a_verdict_not_a_traceback(
    policy: Policy,
) -> None:
    """Found by scripts/fuzz_pipeline.py (a mutation of the robustness corpus's
    govcert/sample_gh_issue_76.eml): email.header raised HeaderParseError ("Base64
    decoding error"), the scan failed, and the milter tempfailed the message on every
    retry until it bounced."""
    result = await scan(BROKEN_WORDS, Envelope(), policy)
    assert result.verdict.disposition is not None
    assert [a.address for a in result.mime.from_addresses] == ["badname@example.com"]
    apply_plan(BROKEN_WORDS, result.plan)


NUL_CHARSET_LURE = (
    b"From: Assurance Maladie <info@ameli-remboursement.fr>\r\nTo: a@example.net\r\n"
    b"Subject: =?\x00UTF-8?B??= remboursement\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf\x008"\r\n\r\n'
    b"Votre remboursement ameli est en attente : https://ameli-remboursement.fr/x\r\n"
)


async def test_a_nul_in_a_charset_name_is_a_verdict_not_a_traceback(policy: Policy) -> None:
    """Found by scripts/fuzz_pipeline.py: ``bytes.decode`` raises ValueError ("embedded
    null character") for a charset name holding a NUL, in an encoded word (Subject) and
    in a part's Content-Type; the scan failed (tempfail on every retry). The lure is
    still read and quarantined, and its plan (body banner included) applies."""
    result = await scan(NUL_CHARSET_LURE, Envelope(), policy)
    assert result.verdict.disposition is Disposition.QUARANTINE
    assert "LINK_LOOKALIKE" in _codes(result.verdict.findings)
    apply_plan(NUL_CHARSET_LURE, result.plan)


async def test_a_nul_charset_part_tagged_with_a_banner_is_left_unedited(tmp_path: Path) -> None:
    """The body rewriter (banner, defang) skips a part whose charset no codec takes,
    instead of failing the whole plan."""
    (tmp_path / "local.yaml").write_text(
        "rules:\n  - name: brand-impersonation\n    replace: true\n"
        "    when: {any: [BRAND_AUTH_FAIL, DISPLAY_NAME_BRAND, FROM_LOOKALIKE]}\n"
        "    verdict: tag\n    actions: [banner, subject_tag]\n"
    )
    result = await scan(NUL_CHARSET_LURE, Envelope(), load_policy(tmp_path))
    assert result.verdict.disposition is Disposition.TAG
    delivered = apply_plan(NUL_CHARSET_LURE, result.plan)
    assert delivered.split(b"\r\n\r\n", 1)[1] == NUL_CHARSET_LURE.split(b"\r\n\r\n", 1)[1]

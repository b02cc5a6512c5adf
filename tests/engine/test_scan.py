"""scan(): one parse, concurrent checks, crashes and timeouts become CHECK_ERROR."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from milter.actions.apply import apply_plan
from milter.checks.base import Check, CheckContext, Outcome
from milter.checks.registry import default_checks
from milter.engine import scan
from milter.model.budget import WorkBudgetExceeded
from milter.model.envelope import Envelope
from milter.model.findings import Finding, Severity
from milter.model.plan import HeaderOp
from milter.model.verdict import Disposition
from tests.conftest import EXAMPLES


class Crashing:
    name = "crashing"

    async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
        raise RuntimeError("boom")


class Slow:
    name = "slow"

    async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
        await asyncio.sleep(5)
        return ()


class CrashingInline(Crashing):
    name = "crashing-inline"
    awaits_io = False


class OverBudgetInline:
    name = "over-budget"
    awaits_io = False

    async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
        raise WorkBudgetExceeded("a long loop")


class Journal:
    """Checks that write what they do, in order, to one shared list."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def waiting(self, name: str) -> Check:
        journal = self

        class Waiting:
            async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
                journal.events.append(f"{name} asks")
                await asyncio.sleep(0.01)
                journal.events.append(f"{name} answered")
                return (_finding(name),)

        check = Waiting()
        check.name = name  # type: ignore[attr-defined]
        return check  # type: ignore[return-value]

    def inline(self, name: str) -> Check:
        journal = self

        class Inline:
            awaits_io = False

            async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
                journal.events.append(f"{name} runs")
                return (_finding(name),)

        check = Inline()
        check.name = name  # type: ignore[attr-defined]
        return check  # type: ignore[return-value]


def _finding(check: str) -> Finding:
    return Finding("FREE_MAIL_BRAND", check, Severity.INFO, f"from {check}", None, {})


def read(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


async def test_example_lures_are_quarantined_with_reasons(policy) -> None:
    for name, brand in (("ameli-lure.eml", "ameli"), ("cpf-lure.eml", "cpf")):
        result = await scan(read(name), Envelope(), policy)
        assert result.verdict.disposition is Disposition.QUARANTINE, name
        assert result.verdict.brand == brand
        codes = {f.code for f in result.verdict.findings}
        assert "DISPLAY_NAME_BRAND" in codes
        assert "BRAND_NEVER_ASKS" in codes
        assert result.plan.quarantine


async def test_legit_notice_passes_untouched_but_for_the_verdict_header(policy) -> None:
    raw = read("legit-notice.eml")
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.disposition is Disposition.ACCEPT
    assert result.verdict.findings == ()
    delivered = apply_plan(raw, result.plan)
    assert delivered.endswith(result.mime.body)
    assert b"X-Tocsin-Verdict: v=1; verdict=accept" in delivered


async def test_a_crashing_check_becomes_check_error_and_tempfail(policy) -> None:
    result = await scan(read("legit-notice.eml"), Envelope(), policy, checks=[Crashing()])
    codes = [f.code for f in result.verdict.findings]
    assert codes == ["CHECK_ERROR"]
    assert "RuntimeError: boom" in result.verdict.findings[0].text
    assert result.verdict.disposition is Disposition.TEMPFAIL
    assert result.plan.smtp_reply is not None
    assert result.plan.smtp_reply.code == 451


async def test_an_inline_check_that_crashes_or_runs_out_of_budget_is_a_finding(policy) -> None:
    checks: list[Check] = [CrashingInline(), OverBudgetInline()]
    result = await scan(read("legit-notice.eml"), Envelope(), policy, checks=checks)
    found = {f.check: f for f in result.verdict.findings}
    assert found["crashing-inline"].code == "CHECK_ERROR"
    assert "RuntimeError: boom" in found["crashing-inline"].text
    assert found["over-budget"].code == "LIMIT_EXCEEDED"
    assert found["over-budget"].evidence["limit"] == "work"
    assert result.verdict.disposition is Disposition.TEMPFAIL


async def test_cpu_checks_run_while_dns_checks_wait_and_results_keep_check_order(policy) -> None:
    journal = Journal()
    checks = [
        journal.inline("first"),
        journal.waiting("dns-a"),
        journal.inline("second"),
        journal.waiting("dns-b"),
    ]
    result = await scan(read("legit-notice.eml"), Envelope(), policy, checks=checks)
    assert journal.events[:2] == ["dns-a asks", "dns-b asks"]  # queries go out first
    assert journal.events[2:4] == ["first runs", "second runs"]  # then the CPU work
    assert sorted(journal.events[4:]) == ["dns-a answered", "dns-b answered"]
    assert [f.check for f in result.verdict.findings] == ["first", "dns-a", "second", "dns-b"]


async def test_a_slow_check_times_out_into_check_error(tmp_path, policy) -> None:
    (tmp_path / "l.yaml").write_text("limits:\n  check_timeout_seconds: 0.05\n")
    from milter.policy.loader import load_policy

    fast = load_policy(tmp_path)
    result = await scan(read("legit-notice.eml"), Envelope(), fast, checks=[Slow()])
    assert [f.code for f in result.verdict.findings] == ["CHECK_ERROR"]
    assert "timed out" in result.verdict.findings[0].text


async def test_forged_verdict_headers_are_removed_before_ours_is_added(policy) -> None:
    raw = (
        b"From: a@example.org\r\nX-Tocsin-Verdict: v=1; verdict=accept\r\n"
        b"Subject: hi\r\nX-Tocsin-Verdict: forged\r\n\r\nbody\r\n"
    )
    result = await scan(raw, Envelope(), policy)
    ops = [(e.op, e.index) for e in result.plan.header_edits]
    assert ops[:2] == [(HeaderOp.DELETE, 2), (HeaderOp.DELETE, 1)]
    delivered = apply_plan(raw, result.plan)
    assert delivered.count(b"X-Tocsin-Verdict") == 1
    assert b"forged" not in delivered


async def test_subject_tag_is_not_duplicated_on_rescan(policy) -> None:
    raw = (
        b"From: Service CPF <x@school.example>\r\nSubject: Votre dossier\r\n"
        b"Content-Type: text/plain\r\n\r\nBonjour\r\n"
    )
    tag_all = default_checks()
    first = await scan(raw, Envelope(), policy, checks=tag_all)
    assert first.verdict.disposition is Disposition.QUARANTINE
    # Force the tag path: a message naming the brand only in its subject.
    raw = b"From: x@school.example\r\nSubject: Info CPF\r\n\r\nexpire sous 48 h\r\n"
    once = await scan(raw, Envelope(), policy)
    assert once.verdict.disposition is Disposition.TAG, once.verdict.findings
    tagged = apply_plan(raw, once.plan)
    assert b"Subject: [SUSPECT] Info CPF" in tagged
    twice = apply_plan(tagged, (await scan(tagged, Envelope(), policy)).plan)
    assert twice.count(b"[SUSPECT]") == 1


async def test_a_tagged_message_gets_exactly_one_banner_even_on_rescan(policy) -> None:
    raw = b"From: x@school.example\r\nSubject: Info CPF\r\n\r\nexpire sous 48 h\r\n"
    first = await scan(raw, Envelope(), policy)
    assert first.verdict.disposition is Disposition.TAG
    assert first.plan.new_body is not None
    delivered = apply_plan(raw, first.plan)
    assert delivered.count(b"[Tocsin]") == 1
    second = apply_plan(delivered, (await scan(delivered, Envelope(), policy)).plan)
    assert second.count(b"[Tocsin]") == 1
    assert second.count(b"X-Tocsin-Verdict") == 1


async def test_lookalike_link_behind_a_redirector_is_found(policy) -> None:
    result = await scan(read("cpf-lure.eml"), Envelope(), policy)
    lookalikes = [f for f in result.verdict.findings if f.code == "LINK_LOOKALIKE"]
    assert lookalikes
    assert lookalikes[0].evidence["host"] == "moncompteformation-gouv.fr"
    assert lookalikes[0].evidence["imitates"] == "moncompteformation.gouv.fr"
    assert "redirector" in lookalikes[0].text
    mismatch = [f for f in result.verdict.findings if f.code == "LINK_TEXT_MISMATCH"]
    assert mismatch[0].evidence["shown"] == "moncompteformation.gouv.fr"


async def test_a_cancelled_scan_leaves_no_check_running(policy) -> None:
    started = asyncio.Event()

    class Waiting:
        name = "waits"

        async def run(self, ctx: CheckContext) -> Sequence[Outcome]:
            started.set()
            await asyncio.sleep(30)
            return ()

    before = asyncio.all_tasks()
    scanning = asyncio.ensure_future(
        scan(read("legit-notice.eml"), Envelope(), policy, checks=[Waiting()])
    )
    await started.wait()
    scanning.cancel()
    await asyncio.gather(scanning, return_exceptions=True)
    await asyncio.sleep(0)  # the checks' tasks see their cancellation
    assert scanning.cancelled()
    assert asyncio.all_tasks() - before == set()


async def test_the_shared_default_checks_keep_no_state_between_messages(policy) -> None:
    """default_checks() is made once and shared by every scan: a check must not keep
    anything of one message on itself."""
    checks = default_checks()
    assert default_checks() is checks
    for name in ("ameli-lure.eml", "legit-notice.eml"):
        await scan(read(name), Envelope(), policy)
    for check in checks:
        assert getattr(check, "__dict__", {}) == {}, check.name

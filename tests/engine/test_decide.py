"""decide(): first matching rule wins, score thresholds as fallback, allowlist with reasons."""

from __future__ import annotations

from pathlib import Path

from milter.engine.decide import decide
from milter.model.envelope import Envelope
from milter.model.findings import CHECK_ERROR, Finding, Severity
from milter.model.verdict import Disposition
from milter.policy.loader import load_policy


def finding(code: str, severity: Severity = Severity.MEDIUM, brand: str | None = None) -> Finding:
    return Finding(code, "test", severity, f"{code} happened", brand, {"k": "v"})


def test_no_findings_is_accept(policy) -> None:
    verdict = decide([], policy)
    assert verdict.disposition is Disposition.ACCEPT
    assert verdict.reasons[0].rule == "score"


def test_first_matching_rule_wins(policy) -> None:
    verdict = decide(
        [finding("DISPLAY_NAME_BRAND", Severity.HIGH, "cpf"), finding(CHECK_ERROR)],
        policy,
        brand="cpf",
    )
    assert verdict.disposition is Disposition.TEMPFAIL  # check-error comes first
    assert verdict.reasons[0].rule == "check-error"


def test_brand_impersonation_is_quarantined(policy) -> None:
    verdict = decide([finding("DISPLAY_NAME_BRAND", Severity.HIGH, "cpf")], policy, brand="cpf")
    assert verdict.disposition is Disposition.QUARANTINE
    assert verdict.reasons[0].codes == ("DISPLAY_NAME_BRAND",)


def test_min_severity_gates_a_rule(policy) -> None:
    low = decide([finding("LINK_LOOKALIKE", Severity.LOW)], policy)
    high = decide([finding("LINK_LOOKALIKE", Severity.HIGH)], policy)
    assert low.disposition is Disposition.ACCEPT
    assert high.disposition is Disposition.QUARANTINE


def test_score_thresholds_are_the_fallback(policy) -> None:
    tagged = decide([finding("URGENCY"), finding("LINK_TRICK", Severity.LOW)], policy)
    assert tagged.disposition is Disposition.TAG
    assert tagged.score == 4
    assert {"banner", "defang_links", "subject_tag"} <= tagged.actions
    quarantined = decide(
        [
            finding("PHONE_NOT_OFFICIAL", Severity.CRITICAL),
            finding("REPLY_TO_FOREIGN", Severity.HIGH),
        ],
        policy,
    )
    assert quarantined.disposition is Disposition.QUARANTINE


def test_temperror_only_tempfails_a_brand_claim(policy) -> None:
    plain = decide([finding("AUTH_TEMPERROR", Severity.LOW)], policy)
    claimed = decide([finding("AUTH_TEMPERROR", Severity.LOW, "ameli")], policy, brand="ameli")
    assert plain.disposition is Disposition.ACCEPT
    assert claimed.disposition is Disposition.TEMPFAIL


def test_allowlist_removes_findings_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "allow.yaml").write_text(
        "allowlist:\n  - {from_domain: partner.example.fr, codes: [SUBJECT_BRAND],"
        " reason: partner newsletter}\n",
        encoding="utf-8",
    )
    loaded = load_policy(tmp_path)
    findings = [finding("SUBJECT_BRAND", Severity.HIGH), finding("URGENCY", Severity.LOW)]
    verdict = decide(findings, loaded, envelope=Envelope(), from_domain="partner.example.fr")
    assert [f.code for f in verdict.findings] == ["URGENCY"]
    assert any(r.rule == "allowlist" and "partner newsletter" in r.text for r in verdict.reasons)
    other = decide(findings, loaded, envelope=Envelope(), from_domain="else.example.fr")
    assert len(other.findings) == 2


def test_allowlist_never_hides_check_errors(tmp_path: Path) -> None:
    (tmp_path / "allow.yaml").write_text(
        "allowlist:\n  - {client_ip: 192.0.2.0/24, reason: internal relay}\n", encoding="utf-8"
    )
    loaded = load_policy(tmp_path)
    verdict = decide([finding(CHECK_ERROR)], loaded, envelope=Envelope(client_ip="192.0.2.9"))
    assert verdict.disposition is Disposition.TEMPFAIL

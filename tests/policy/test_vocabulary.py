"""One vocabulary: unknown codes are refused at file:line, every error in one pass,
and an admin's ``rules:`` merges with the shipped rules by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from milter.cli import main
from milter.policy.loader import load_policy
from tests.policy.test_loader import errors_of, write


def test_unknown_codes_in_rules_allowlist_and_scoring_name_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "local.yaml",
        "rules:\n"
        "  - name: typo\n"
        "    when: {any: [DMARC_FAILL]}\n"
        "    verdict: quarantine\n"
        "allowlist:\n"
        "  - {from_domain: partner.example.fr, codes: [SUBJECT_BRANDS], reason: partner}\n"
        "scoring:\n"
        "  codes:\n"
        "    URGENCYY: 2\n",
    )
    errors = errors_of(tmp_path)
    assert errors == [
        f"{path}:3: rules[{N}].when.any[0]: no finding code named 'DMARC_FAILL'; "
        "did you mean 'DMARC_FAIL'? (docs/policy.md lists them)",
        f"{path}:6: allowlist[0].codes[0]: no finding code named 'SUBJECT_BRANDS'; "
        "did you mean 'SUBJECT_BRAND'? (docs/policy.md lists them)",
        f"{path}:9: scoring.codes.URGENCYY: no finding code named 'URGENCYY'; "
        "did you mean 'URGENCY'? (docs/policy.md lists them)",
    ]


def test_reference_errors_come_with_structural_errors_in_one_pass(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "local.yaml",
        "limits:\n  max_links: lots\nbrands:\n  ameli:\n    never_asks: [bank_detail]\n",
    )
    errors = errors_of(tmp_path)
    assert any(e.startswith(f"{path}:2: limits.max_links:") for e in errors)
    assert (
        f"{path}:5: brands.ameli.never_asks[0]: no phrase set named 'bank_detail'; "
        "did you mean 'bank_details'?" in errors
    )
    assert len(errors) == 2


def test_policy_check_cli_prints_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - {name: x, when: {any: [NOPE_CODE]}, verdict: tag}\n")
    write(tmp_path, "b.yaml", "brands:\n  ameli:\n    never_asks: [nope]\n")
    assert main(["policy", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"a.yaml:2: rules[{N}].when.any[0]: no finding code named 'NOPE_CODE'" in out
    assert "b.yaml:3: brands.ameli.never_asks[0]: no phrase set named 'nope'" in out


def names(directory: Path | None, domain: str = "") -> list[str]:
    policy = load_policy(directory)
    rcpts = [f"a@{domain}"] if domain else []
    return [r.name for r in policy.effective(rcpts).rules]


SHIPPED = [
    "check-error",
    "brand-impersonation",
    "brand-auth-temperror",
    "lookalike-link",
    "brand-local-part",
    "cpf-canvassing",
]
N = len(SHIPPED)  # an admin's first rule is rules[N] of the concatenated lists


def test_admin_rules_are_added_not_replacing_the_shipped_ones(tmp_path: Path) -> None:
    assert names(None) == SHIPPED
    write(
        tmp_path,
        "local.yaml",
        "rules:\n"
        "  - {name: partner, when: {any: [SUBJECT_BRAND]}, verdict: accept,\n"
        "     before: brand-impersonation}\n"
        "  - {name: urgent, when: {any: [URGENCY]}, verdict: tag}\n",
    )
    got = names(tmp_path)
    assert got[:3] == ["check-error", "partner", "brand-impersonation"]
    assert got[-1] == "urgent"
    assert "check-error" in got


def test_same_name_needs_replace_or_disabled(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "local.yaml",
        "rules:\n  - {name: check-error, when: {any: [CHECK_ERROR]}, verdict: accept}\n",
    )
    (error,) = errors_of(tmp_path)
    assert error.startswith(f"{path}:2: rules[{N}].name: rule 'check-error' is already defined at ")
    assert "replace: true" in error


def test_replace_keeps_the_place_and_disabled_removes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "local.yaml",
        "rules:\n"
        "  - {name: brand-impersonation, replace: true,\n"
        "     when: {any: [BRAND_AUTH_FAIL]}, verdict: reject}\n"
        "  - {name: lookalike-link, disabled: true}\n",
    )
    policy = load_policy(tmp_path)
    rules = policy.document.rules
    assert [r.name for r in rules][:3] == SHIPPED[:3]
    assert "lookalike-link" not in [r.name for r in rules]
    assert str(rules[1].verdict) == "reject"


def test_disabling_or_placing_against_an_unknown_rule_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "local.yaml",
        "rules:\n"
        "  - {name: check-eror, disabled: true}\n"
        "  - {name: mine, when: {any: [URGENCY]}, verdict: tag, after: nowhere}\n",
    )
    assert errors_of(tmp_path) == [
        f"{path}:2: rules[{N}].name: no rule named 'check-eror' to disable",
        f"{path}:3: rules[{N + 1}].after: no rule named 'nowhere' to place this rule after",
    ]


def test_recipient_domain_rules_merge_over_the_global_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        "local.yaml",
        "recipient_domains:\n"
        "  vip.example.fr:\n"
        "    rules:\n"
        "      - {name: vip-urgency, when: {any: [URGENCY]}, verdict: quarantine}\n",
    )
    got = names(tmp_path, "vip.example.fr")
    assert got[:N] == SHIPPED
    assert got[-1] == "vip-urgency"
    assert names(tmp_path, "other.example.fr")[-1] != "vip-urgency"


def test_the_store_compiles_each_policy_before_it_is_in_force(tmp_path: Path) -> None:
    from milter.checks.compiled import KEY, CompiledPolicy, compiled
    from milter.engine import prepare_policy
    from milter.policy.store import PolicyStore

    store = PolicyStore(tmp_path, prepare=prepare_policy)
    first = store.current
    assert isinstance(first.derived.get(KEY), CompiledPolicy)  # built at load, not per message
    assert compiled(first) is first.derived[KEY]
    assert compiled(first).brand_index.official_brands("www.ameli.fr") == ("ameli",)
    write(tmp_path, "brands.yaml", "brands:\n  ameli:\n    names: [Assurance Maladie, Arneli]\n")
    assert store.reload() == ()
    second = store.current
    assert second is not first
    assert isinstance(second.derived.get(KEY), CompiledPolicy)
    assert ("arneli", "ameli") in [(k.strip(), b) for k, b in compiled(second).name_keys]


def test_a_refused_rule_still_has_its_codes_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "local.yaml",
        "rules:\n  - {name: check-error, when: {any: [CHECK_EROR]}, verdict: accept}\n",
    )
    errors = errors_of(tmp_path)
    assert any(e.startswith(f"{path}:2: rules[{N}].name: rule 'check-error'") for e in errors)
    assert any(
        e.startswith(f"{path}:2: rules[{N}].when.any[0]: no finding code named 'CHECK_EROR'")
        for e in errors
    )

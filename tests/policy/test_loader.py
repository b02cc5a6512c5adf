"""The policy loader: defaults valid, every error with file and line, overrides merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from milter.policy.errors import PolicyInvalid
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(directory: Path) -> list[str]:
    with pytest.raises(PolicyInvalid) as info:
        load_policy(directory)
    return [str(e) for e in info.value.errors]


def test_shipped_defaults_load_with_every_required_brand(policy) -> None:
    required = {
        "ameli",
        "cpf",
        "caissedesdepots",
        "franceconnect",
        "dgfip",
        "ants",
        "service-public",
        "cybermalveillance",
    }
    assert required <= set(policy.brands)
    assert "ameli.fr" in policy.brand("ameli").domains
    assert "3646" in policy.brand("ameli").phones


def test_every_error_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    brands = write(
        tmp_path,
        "brands.yaml",
        (
            "brands:\n"
            "  ameli:\n"
            "    domains: [ameli.fr, 'not a domain']\n"
            "    colour: blue\n"
            "scoring:\n"
            "  thresholds:\n"
            "    tag: -4\n"
            "limits:\n"
            "  max_links: lots\n"
        ),
    )
    errors = errors_of(tmp_path)
    assert f"{brands}:3: brands.ameli.domains[1]: 'not a domain' is not a domain name" in errors
    assert f"{brands}:4: brands.ameli.colour: unknown key" in errors
    assert any(e.startswith(f"{brands}:7: scoring.thresholds.tag:") for e in errors)
    assert any(e.startswith(f"{brands}:9: limits.max_links:") for e in errors)
    assert len(errors) == 4


def test_yaml_syntax_error_names_the_line_and_other_files_still_report(tmp_path: Path) -> None:
    broken = write(tmp_path, "a.yaml", "rules:\n  - name: x\n    when: {any: [A]\n")
    other = write(tmp_path, "b.yaml", "limits:\n  nonsense: 1\n")
    errors = errors_of(tmp_path)
    assert any(e.startswith(f"{broken}:4: YAML syntax error") for e in errors)
    assert f"{other}:2: limits.nonsense: unknown key" in errors


def test_reference_to_unknown_phrase_set_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "b.yaml", "brands:\n  ameli:\n    never_asks: [bank_details, nope]\n")
    assert errors_of(tmp_path) == [
        f"{path}:3: brands.ameli.never_asks[1]: no phrase set named 'nope'"
    ]


def test_override_merges_over_defaults(tmp_path: Path) -> None:
    write(tmp_path, "local.yaml", "scoring:\n  thresholds:\n    quarantine: 20\n")
    loaded = load_policy(tmp_path)
    assert loaded.document.scoring.thresholds.quarantine == 20
    assert loaded.document.scoring.thresholds.tag == 3  # untouched default
    assert "ameli" in loaded.brands


def test_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    assert errors_of(tmp_path / "absent") == [f"{tmp_path / 'absent'}:0: not a directory"]


def test_reload_keeps_the_old_policy_when_the_new_file_is_bad(tmp_path: Path) -> None:
    local = write(tmp_path, "local.yaml", "scoring:\n  thresholds:\n    quarantine: 20\n")
    store = PolicyStore(tmp_path)
    before = store.current
    local.write_text("scoring:\n  thresholds:\n    quarantine: [\n", encoding="utf-8")
    errors = store.reload()
    assert errors
    assert errors[0].file == str(local)
    assert store.current is before
    local.write_text("scoring:\n  thresholds:\n    quarantine: 15\n", encoding="utf-8")
    assert store.reload() == ()
    assert store.current is not before
    assert store.current.document.scoring.thresholds.quarantine == 15


def test_policy_document_is_immutable(policy) -> None:
    with pytest.raises(Exception, match="frozen"):
        policy.document.scoring = None  # type: ignore[misc]


def test_recipient_domain_override_applies_only_when_all_rcpts_match(tmp_path: Path) -> None:
    write(
        tmp_path,
        "o.yaml",
        ("recipient_domains:\n  vip.example.fr:\n    scoring:\n      thresholds: {tag: 1}\n"),
    )
    loaded = load_policy(tmp_path)
    assert loaded.effective(["a@vip.example.fr"]).scoring.thresholds.tag == 1
    assert loaded.effective(["a@vip.example.fr", "b@other.fr"]).scoring.thresholds.tag == 3

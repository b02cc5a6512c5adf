"""Cross-references in the policy: finding codes, phrase sets, banner languages.

Checked on the raw merged data, whether or not the structure validated, so one run of
``tocsin policy check`` reports a misspelt code or phrase set together with every
structural error, each at its ``file:line``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from milter.model.codes import CODES, Code, is_code
from milter.policy.errors import PolicyError
from milter.policy.source import SourceTree

CONDITION_KEYS = ("any", "all", "none")
BRAND_PLACEHOLDERS = frozenset({"brand", "brand_le", "brand_de"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


def reference_errors(tree: SourceTree) -> list[PolicyError]:
    """Every unknown code, phrase set or banner language in ``tree``."""
    data = tree.data
    found: list[PolicyError] = []

    def add(path: str, message: str) -> None:
        file, line = tree.origin(path)
        found.append(PolicyError(file, line, path, message))

    for path, value in _code_refs(data):
        if isinstance(value, str) and not is_code(value):
            add(path, _unknown_code(value))
    phrases = data.get("phrases")
    phrase_ids = set(phrases) if isinstance(phrases, dict) else set()
    for brand_id, brand in _mapping(data.get("brands")):
        for i, name in enumerate(_list(_get(brand, "never_asks"))):
            if isinstance(name, str) and name not in phrase_ids:
                add(f"brands.{brand_id}.never_asks[{i}]", _unknown(name, phrase_ids, "phrase set"))
    banners = data.get("banners")
    languages = set(banners) if isinstance(banners, dict) else set()
    for lang, texts in _mapping(banners):
        for code, template in _mapping(_get(texts, "reasons")):
            path = f"banners.{lang}.reasons.{code}"
            if not is_code(code):
                add(path, _unknown_code(code))
            elif isinstance(template, str):
                allowed = set(CODES[Code(code)].evidence) | BRAND_PLACEHOLDERS
                for name in _PLACEHOLDER.findall(template):
                    if name not in allowed:
                        add(
                            path,
                            f"{{{name}}} is not an evidence key of {code} "
                            f"(known: {', '.join(sorted(allowed))})",
                        )
    for path, actions in _actions_blocks(data):
        for i, lang in enumerate(_list(_get(actions, "banner_languages"))):
            if isinstance(lang, str) and lang not in languages:
                add(f"{path}.banner_languages[{i}]", f"no banner texts for {lang!r}")
    return found


def _unknown_code(value: str) -> str:
    return _unknown(value, set(Code.__members__), "finding code") + " (docs/policy.md lists them)"


def _unknown(value: str, known: set[str], kind: str) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no {kind} named {value!r}{hint}"


def _code_refs(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(key path, value) of every place a finding code is written."""
    yield from _rule_codes(data.get("rules"), "rules")
    yield from _scoring_codes(data.get("scoring"), "scoring")
    for i, entry in enumerate(_list(data.get("allowlist"))):
        for j, code in enumerate(_list(_get(entry, "codes"))):
            yield f"allowlist[{i}].codes[{j}]", code
    for domain, override in _mapping(data.get("recipient_domains")):
        base = f"recipient_domains.{domain}"
        yield from _rule_codes(_get(override, "rules"), f"{base}.rules")
        yield from _scoring_codes(_get(override, "scoring"), f"{base}.scoring")


def _rule_codes(rules: Any, path: str) -> Iterator[tuple[str, Any]]:
    for i, rule in enumerate(_list(rules)):
        when = _get(rule, "when")
        for key in CONDITION_KEYS:
            for j, code in enumerate(_list(_get(when, key))):
                yield f"{path}[{i}].when.{key}[{j}]", code


def _scoring_codes(scoring: Any, path: str) -> Iterator[tuple[str, Any]]:
    for code, _ in _mapping(_get(scoring, "codes")):
        yield f"{path}.codes.{code}", code


def _actions_blocks(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "actions", data.get("actions")
    for domain, override in _mapping(data.get("recipient_domains")):
        yield f"recipient_domains.{domain}.actions", _get(override, "actions")


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in value.items()] if isinstance(value, dict) else []

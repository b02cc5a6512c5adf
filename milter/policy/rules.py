"""Rules merge by name: an admin adds, replaces or disables rules, never drops them by accident.

rspamd keeps ``local.d`` (merged into the shipped settings) apart from ``override.d``
(replacing them). Tocsin's ``rules:`` lists work the same way, per rule: the lists of
every file are concatenated in load order, then resolved one entry at a time:

- a new name is appended, or placed with ``before: <name>`` / ``after: <name>``;
- a name already defined is an error unless the entry says ``replace: true`` (it takes the
  old rule's place) or ``disabled: true`` (the rule is removed, on purpose);
- ``recipient_domains.<d>.rules`` resolve the same way on top of the global rules.

So an override file with a ``rules:`` list keeps the shipped ``check-error → tempfail``.
Resolution works on the raw YAML data, before validation, so each error names its line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from milter.policy.errors import PolicyError
from milter.policy.source import SourceTree, move_origins

CONTROL_KEYS = ("replace", "disabled", "before", "after")


@dataclass
class _Item:
    data: Any
    path: str  # where it was written, for origins


def resolve_rules(tree: SourceTree, errors: list[PolicyError]) -> None:
    """Resolve ``rules`` and every ``recipient_domains.<d>.rules`` in ``tree``, in place."""
    data = tree.data
    origins = dict(tree.origins)
    base: list[_Item] = []
    if isinstance(data.get("rules"), list):
        base = _resolve([], _items(data["rules"], "rules"), tree, errors)
        _store(tree, origins, parent=data, key="rules", path="rules", items=base)
    domains = data.get("recipient_domains")
    if not isinstance(domains, dict):
        return
    for domain, override in domains.items():
        if isinstance(override, dict) and isinstance(override.get("rules"), list):
            path = f"recipient_domains.{domain}.rules"
            resolved = _resolve(base, _items(override["rules"], path), tree, errors)
            _store(tree, origins, parent=override, key="rules", path=path, items=resolved)


def _items(entries: list[Any], path: str) -> list[_Item]:
    return [_Item(entry, f"{path}[{i}]") for i, entry in enumerate(entries)]


def _store(
    tree: SourceTree,
    origins: dict[str, tuple[str, int]],
    *,
    parent: dict[str, Any],
    key: str,
    path: str,
    items: list[_Item],
) -> None:
    parent[key] = [item.data for item in items]
    for stale in [p for p in tree.origins if p.startswith(path + "[")]:
        del tree.origins[stale]
    for i, item in enumerate(items):
        tree.origins.update(move_origins(origins, item.path, f"{path}[{i}]"))


def _resolve(
    base: list[_Item], entries: list[_Item], tree: SourceTree, errors: list[PolicyError]
) -> list[_Item]:
    rules = list(base)

    def error(item: _Item, key: str, message: str) -> None:
        path = f"{item.path}.{key}" if key else item.path
        file, line = tree.origin(path)
        errors.append(PolicyError(file, line, path, message))

    def index_of(name: object) -> int | None:
        found = [i for i, r in enumerate(rules) if _name(r.data) == name]
        return found[0] if found else None

    for entry in entries:
        if not isinstance(entry.data, dict):
            rules.append(entry)  # validation reports the wrong type
            continue
        control = {k: entry.data[k] for k in CONTROL_KEYS if k in entry.data}
        rule = _Item({k: v for k, v in entry.data.items() if k not in CONTROL_KEYS}, entry.path)
        name = _name(entry.data)
        at = index_of(name) if name is not None else None
        if control.get("disabled") is True:
            if at is None:
                error(entry, "name", f"no rule named {name!r} to disable")
            else:
                del rules[at]
            continue
        if at is not None and control.get("replace") is not True:
            file, line = tree.origin(rules[at].path)
            error(
                entry,
                "name",
                f"rule {name!r} is already defined at {file}:{line}; add `replace: true` to "
                "replace it or `disabled: true` to remove it",
            )
            continue
        if at is None and control.get("replace") is True:
            error(entry, "replace", f"no rule named {name!r} to replace")
            continue
        place = _placement(control, index_of, entry, error)
        if at is not None:
            del rules[at]
            if place is None:
                place = at
            elif place > at:
                place -= 1
        rules.insert(len(rules) if place is None else place, rule)
    return rules


def _placement(
    control: dict[str, Any],
    index_of: Callable[[object], int | None],
    entry: _Item,
    error: Callable[[_Item, str, str], None],
) -> int | None:
    for key, shift in (("before", 0), ("after", 1)):
        if key in control:
            target = index_of(control[key])
            if target is None:
                error(entry, key, f"no rule named {control[key]!r} to place this rule {key}")
                return None
            return target + shift
    return None


def _name(data: Any) -> object:
    return data.get("name") if isinstance(data, dict) else None

"""Read YAML policy files into plain data plus an index of where every key came from.

PyYAML's composed node tree keeps line numbers; we walk it once to build both the
plain Python value and ``{key path: (file, line)}``, so validation errors can name
the line. Merging follows rspamd's habit: the admin's files override the shipped
defaults key by key (mappings merge, lists and scalars replace) — except ``rules`` lists,
which are concatenated here and then resolved by name (:mod:`milter.policy.rules`), so
an admin's file never silently drops a shipped rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from milter.policy.errors import PolicyError

Origin = tuple[str, int]  # (file, 1-based line)

# One constructor turns scalar nodes into Python values with YAML's safe type rules.
_SCALARS = yaml.constructor.SafeConstructor()


@dataclass
class SourceTree:
    """Merged plain data and the origin of each key path."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def origin(self, path: str) -> Origin:
        """File and line of ``path``, or of its nearest ancestor."""
        probe = path
        while probe:
            if probe in self.origins:
                return self.origins[probe]
            probe = _parent(probe)
        return (self.files[0] if self.files else "<policy>", 1)


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def load_file(path: Path, label: str, errors: list[PolicyError]) -> tuple[Any, dict[str, Origin]]:
    """Compose one YAML file; returns (data, origins) or appends errors and returns ({}, {})."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(PolicyError(label, 1, "", f"cannot read: {exc}"))
        return {}, {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        errors.append(PolicyError(label, line, "", f"YAML syntax error: {exc.problem}"))
        return {}, {}
    except yaml.YAMLError as exc:
        errors.append(PolicyError(label, 1, "", f"YAML error: {exc}"))
        return {}, {}
    if node is None:
        return {}, {}
    origins: dict[str, Origin] = {}
    data = _convert(node, "", label, origins, errors)
    if not isinstance(data, dict):
        errors.append(
            PolicyError(label, node.start_mark.line + 1, "", "top level must be a mapping")
        )
        return {}, {}
    return data, origins


def _convert(
    node: yaml.Node, path: str, label: str, origins: dict[str, Origin], errors: list[PolicyError]
) -> Any:
    origins[path] = (label, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                line = key_node.start_mark.line + 1
                errors.append(PolicyError(label, line, _child(path, key), "duplicate key"))
            result[key] = _convert(value_node, _child(path, key), label, origins, errors)
            origins[_child(path, key)] = (label, key_node.start_mark.line + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, _child(path, i), label, origins, errors)
            for i, item in enumerate(node.value)
        ]
    return _SCALARS.construct_object(node)


NAMED_LISTS = frozenset({"rules"})
"""Keys whose lists are concatenated across files, then resolved by item name."""


def merge_into(tree: SourceTree, data: dict[str, Any], origins: dict[str, Origin]) -> None:
    """Overlay one file's data onto the tree: mappings merge, named lists concatenate,
    everything else replaces."""
    _merge(tree.data, data, "", tree.origins, origins)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def move_origins(origins: dict[str, Origin], source: str, target: str) -> dict[str, Origin]:
    """The origins under path ``source``, re-keyed under path ``target``."""
    return {target + p[len(source) :]: o for p, o in origins.items() if _under(p, source)}


def _merge(
    base: dict[str, Any],
    overlay: dict[str, Any],
    path: str,
    base_origins: dict[str, Origin],
    origins: dict[str, Origin],
) -> None:
    for key, value in overlay.items():
        sub = _child(path, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base_origins[sub] = origins[sub]
            _merge(base[key], value, sub, base_origins, origins)
            continue
        if key in NAMED_LISTS and isinstance(value, list) and isinstance(base.get(key), list):
            offset = len(base[key])
            base[key] = base[key] + value
            for i in range(len(value)):
                base_origins.update(move_origins(origins, f"{sub}[{i}]", f"{sub}[{offset + i}]"))
            continue
        base[key] = value
        for name in [p for p in base_origins if _under(p, sub)]:
            del base_origins[name]
        base_origins.update({p: o for p, o in origins.items() if _under(p, sub)})

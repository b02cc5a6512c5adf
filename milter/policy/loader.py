"""Load the shipped defaults plus an admin directory into a validated, immutable Policy."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from milter.policy.errors import PolicyError, PolicyInvalid
from milter.policy.model import Policy
from milter.policy.references import reference_errors
from milter.policy.rules import resolve_rules
from milter.policy.schema import PolicyDocument
from milter.policy.source import SourceTree, load_file, merge_into

DEFAULTS_LABEL = "<defaults>"


def default_files() -> list[tuple[Path, str]]:
    """The embedded default policy files, in load order, with their display labels."""
    folder = resources.files("milter.policy") / "defaults"
    paths = sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))
    return [(p, f"{DEFAULTS_LABEL}/{p.name}") for p in paths]


def admin_files(directory: Path) -> list[tuple[Path, str]]:
    """The admin's ``*.yaml`` files in ``directory``, sorted by name."""
    return [(p, str(p)) for p in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))]


def load_policy(directory: Path | None = None, *, defaults: bool = True) -> Policy:
    """Load and validate; raise ``PolicyInvalid`` with every error found."""
    errors: list[PolicyError] = []
    files: list[tuple[Path, str]] = default_files() if defaults else []
    if directory is not None:
        if not directory.is_dir():
            raise PolicyInvalid([PolicyError(str(directory), 0, "", "not a directory")])
        files += admin_files(directory)
    tree = _read_all(files, errors)
    errors += reference_errors(tree)  # before resolution: a refused rule's codes count too
    resolve_rules(tree, errors)
    document = _validate(tree, errors)
    if errors or document is None:
        order = {name: i for i, name in enumerate(tree.files)}
        raise PolicyInvalid(sorted(errors, key=lambda e: (order.get(e.file, -1), e.line)))
    return Policy(document=document, files=tuple(tree.files), data=tree.data)


def _read_all(files: Iterable[tuple[Path, str]], errors: list[PolicyError]) -> SourceTree:
    tree = SourceTree()
    for path, label in files:
        tree.files.append(label)
        data, origins = load_file(path, label, errors)
        merge_into(tree, data, origins)
    return tree


def _validate(tree: SourceTree, errors: list[PolicyError]) -> PolicyDocument | None:
    try:
        return PolicyDocument.model_validate(tree.data)
    except ValidationError as exc:
        errors += validation_errors(exc, tree)
        return None


def validation_errors(exc: ValidationError, tree: SourceTree) -> list[PolicyError]:
    """Each pydantic error as ``file:line: key.path: message`` from the tree's origins."""
    found: list[PolicyError] = []
    for item in exc.errors():
        path = loc_to_path(item["loc"])
        file, line = tree.origin(path)
        found.append(PolicyError(file, line, path, error_message(item)))
    return found


def loc_to_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the dotted key path admins see (``a.b[2].c``)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith(("function-after", "constrained-str", "literal")):
            continue  # pydantic's internal validator step names, not keys
        else:
            path += f".{part}" if path else str(part)
    return path


def error_message(item: Any) -> str:
    """A pydantic error item as a short message for admins."""
    if item["type"] == "extra_forbidden":
        return "unknown key"
    if item["type"] == "missing":
        return "required key is missing"
    msg = str(item["msg"])
    return msg.removeprefix("Value error, ")

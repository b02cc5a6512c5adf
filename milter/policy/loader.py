"""Load the shipped defaults plus an admin directory into a validated, immutable Policy."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from milter.policy.errors import PolicyError, PolicyInvalid
from milter.policy.model import Policy
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
    document = _validate(tree, errors)
    if document is not None:
        errors += _reference_errors(document, tree)
    if errors or document is None:
        raise PolicyInvalid(errors)
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


def _reference_errors(doc: PolicyDocument, tree: SourceTree) -> list[PolicyError]:
    found: list[PolicyError] = []

    def add(path: str, message: str) -> None:
        file, line = tree.origin(path)
        found.append(PolicyError(file, line, path, message))

    for brand_id, brand in doc.brands.items():
        for i, name in enumerate(brand.never_asks):
            if name not in doc.phrases:
                add(f"brands.{brand_id}.never_asks[{i}]", f"no phrase set named {name!r}")
    for i, lang in enumerate(doc.actions.banner_languages):
        if lang not in doc.banners:
            add(f"actions.banner_languages[{i}]", f"no banner texts for {lang!r}")
    seen: set[str] = set()
    for i, rule in enumerate(doc.rules):
        if rule.name in seen:
            add(f"rules[{i}].name", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
    return found

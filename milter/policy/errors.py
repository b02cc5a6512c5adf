"""Policy errors: every problem found, each naming the file, the line and the key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PolicyError:
    """One problem in one policy file, printed as ``file:line: key.path: message``."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{self.file}:{self.line}:{key} {self.message}"


class PolicyInvalid(Exception):
    """Raised by ``load_policy`` with every error found."""

    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in errors))

"""Hold the policy in force and swap it atomically on reload — only when the new one is valid."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from milter.policy.errors import PolicyError, PolicyInvalid
from milter.policy.loader import load_policy
from milter.policy.model import Policy

log = logging.getLogger(__name__)


class PolicyStore:
    """One reference to the current Policy. Each message takes ``current`` once and keeps
    that snapshot; ``reload`` replaces the reference only if loading succeeded.
    ``prepare`` (the engine's compile step) runs on every policy before it is in force."""

    def __init__(
        self,
        directory: Path | None,
        policy: Policy | None = None,
        prepare: Callable[[Policy], object] | None = None,
    ) -> None:
        self.directory = directory
        self._prepare: Callable[[Policy], object] | None = None
        self._current = policy if policy is not None else load_policy(directory)
        if prepare is not None:
            self.prepare_with(prepare)

    def prepare_with(self, prepare: Callable[[Policy], object]) -> None:
        """Run ``prepare`` on the current policy now and on every reloaded one before it
        is in force (the engine compiles its lookups there, so no message pays for it)."""
        prepare(self._current)
        self._prepare = prepare

    @property
    def current(self) -> Policy:
        """The policy in force."""
        return self._current

    def reload(self) -> tuple[PolicyError, ...]:
        """Load again; on errors keep the old policy, log and return every error."""
        try:
            new = load_policy(self.directory)
        except PolicyInvalid as exc:
            for error in exc.errors:
                log.error("policy reload refused, old policy kept: %s", error)
            return exc.errors
        if self._prepare is not None:
            self._prepare(new)  # compiled before the swap: no message pays for it
        self._current = new
        log.info("policy reloaded from %s", ", ".join(new.files))
        return ()

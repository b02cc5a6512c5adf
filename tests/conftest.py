"""Shared fixtures: the shipped policy, paths to the examples and the shared corpus."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from milter.policy.loader import load_policy
from milter.policy.model import Policy
from tests.support.fixtures import dns_resolver, dns_server  # noqa: F401  (shared fixtures)
from tests.support.leftovers import mark_this_run, wait_for_leftovers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The shipped default policy."""
    return load_policy(None)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus beside the checkout; tests using it skip when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it sits beside the checkout in CI)")
    return CORPUS


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mark this run, so processes its tests start can be told from anyone else's."""
    session.config.stash[_MARKER] = mark_this_run()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test left a process running; then stop it."""
    marker = session.config.stash.get(_MARKER, None)
    if marker is None:
        return
    leftovers = wait_for_leftovers(marker)
    if not leftovers:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  pid {p.pid}: {p.command[:200]}" for p in leftovers]
    message = "processes started by tests are still running:\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True)
    for leftover in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover.pid, signal.SIGTERM)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


_MARKER = pytest.StashKey[str]()

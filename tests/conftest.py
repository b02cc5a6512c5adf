"""Shared fixtures: the shipped policy, paths to the examples and the shared corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from milter.policy.loader import load_policy
from milter.policy.model import Policy
from tests.support.fixtures import dns_resolver, dns_server  # noqa: F401  (shared fixtures)

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

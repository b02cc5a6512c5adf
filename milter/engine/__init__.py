"""The engine: scan → decide → plan. Knows nothing of sockets or front-ends."""

from milter.checks.compiled import prepare as prepare_policy
from milter.engine.pipeline import ScanResult, scan

__all__ = ["ScanResult", "prepare_policy", "scan"]

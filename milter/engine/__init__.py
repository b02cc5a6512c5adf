"""The engine: scan → decide → plan. Knows nothing of sockets or front-ends."""

from milter.engine.pipeline import ScanResult, scan

__all__ = ["ScanResult", "scan"]

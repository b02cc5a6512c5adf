"""Malformed MIME, recorded by the parser, becomes a finding: the verdict says why."""

from __future__ import annotations

from collections.abc import Sequence

from milter.checks.base import CheckContext
from milter.model.codes import Code
from milter.model.findings import Finding, Severity

NAME = "defects"


class DefectsCheck:
    """One MIME_DEFECT finding summarising the parser's defects."""

    name = NAME
    awaits_io = False  # CPU only: the engine runs it inline

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """Nothing for well-formed mail."""
        defects = ctx.mime.defects
        if not defects:
            return ()
        shown = "; ".join(defects[:5]) + (f"; +{len(defects) - 5} more" if len(defects) > 5 else "")
        return (
            Finding(
                Code.MIME_DEFECT,
                NAME,
                Severity.LOW,
                f"malformed message: {shown}",
                None,
                {"count": str(len(defects)), "defects": shown},
            ),
        )

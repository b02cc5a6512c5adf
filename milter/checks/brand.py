"""Report the brand claim itself, so the verdict and the log say what was claimed."""

from __future__ import annotations

from collections.abc import Sequence

from milter.checks.base import CheckContext
from milter.model.codes import Code
from milter.model.findings import Finding, Severity

NAME = "brand"


class BrandClaimCheck:
    """BRAND_CLAIM (info) naming the brand and the signal that claims it, and one more
    for each other brand the message names (a CPF lure asking for FranceConnect logins
    names both)."""

    name = NAME
    awaits_io = False  # CPU only: the engine runs it inline

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """Nothing when the message claims no protected brand."""
        claim = ctx.claim
        if claim is None:
            return ()
        brand = ctx.policy.brand(claim.brand)
        found = [
            Finding(
                Code.BRAND_CLAIM,
                NAME,
                Severity.INFO,
                f"claims to be {brand.name} ({claim.via}: {claim.evidence!r})",
                claim.brand,
                {"via": str(claim.via), "text": claim.evidence},
            )
        ]
        for other in claim.others:
            name = ctx.policy.brand(other).name
            found.append(
                Finding(
                    Code.BRAND_CLAIM,
                    NAME,
                    Severity.INFO,
                    f"also names {name}",
                    other,
                    {"via": "named", "text": name},
                )
            )
        return found

"""What the brand never asks for: phrases requesting bank details, credentials, fees…
and urgency pressure, in French and English, matched on folded whole words."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from milter.checks.base import CheckContext
from milter.model.findings import Finding, Severity
from milter.policy.model import Policy
from milter.text.confusables import phrase_key

NAME = "phrases"
URGENCY = "urgency"


@lru_cache(maxsize=64)
def _phrase_keys(policy: Policy) -> dict[str, tuple[tuple[str, str], ...]]:
    """Per phrase set: (folded key, phrase as written)."""
    return {
        set_id: tuple((phrase_key(p), p) for p in (*ps.fr, *ps.en))
        for set_id, ps in policy.document.phrases.items()
    }


class PhrasesCheck:
    """Requests a claimed brand never makes, and urgency pressure around a brand claim."""

    name = NAME

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """One finding per phrase set hit, naming the first phrase found."""
        if ctx.claim is None:
            return ()
        brand = ctx.policy.brand(ctx.claim.brand)
        haystack = phrase_key(ctx.mime.all_text)
        keys = _phrase_keys(ctx.policy)
        findings = []
        for set_id in (*brand.never_asks, URGENCY):
            hit = next((p for key, p in keys.get(set_id, ()) if key in haystack), None)
            if hit is not None:
                findings.append(self._finding(ctx, set_id, hit))
        return findings

    def _finding(self, ctx: CheckContext, set_id: str, phrase: str) -> Finding:
        assert ctx.claim is not None  # run() checked
        brand = ctx.policy.brand(ctx.claim.brand)
        phrases = ctx.policy.document.phrases[set_id]
        if set_id == URGENCY:
            return Finding(
                "URGENCY",
                NAME,
                Severity.parse(phrases.severity),
                f"urgency pressure ({phrase!r}) in a message claiming {brand.name}",
                ctx.claim.brand,
                {"phrase": phrase, "set": set_id},
            )
        return Finding(
            "BRAND_NEVER_ASKS",
            NAME,
            Severity.parse(phrases.severity),
            f"asks for {phrases.label} ({phrase!r}), which {brand.name} never requests by mail",
            ctx.claim.brand,
            {"phrase": phrase, "set": set_id},
        )

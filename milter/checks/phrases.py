"""What the brand never asks for: phrases requesting bank details, credentials, fees…
and urgency pressure, in French and English, matched on folded whole words — and only
where the request is made, not where it is denied ("nous ne vous demanderons jamais vos
coordonnées bancaires", :mod:`milter.checks.wording`)."""

from __future__ import annotations

from collections.abc import Sequence

from milter.checks.base import CheckContext
from milter.checks.wording import asserted
from milter.model.codes import Code
from milter.model.findings import Finding, Severity
from milter.text.confusables import phrase_key

NAME = "phrases"
URGENCY = "urgency"


class PhrasesCheck:
    """Requests a claimed brand never makes, and urgency pressure around a brand claim."""

    name = NAME
    awaits_io = False  # CPU only: the engine runs it inline

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """One finding per phrase set hit, naming the first phrase found."""
        if ctx.claim is None:
            return ()
        brand = ctx.policy.brand(ctx.claim.brand)
        text = ctx.mime.all_text
        haystack = phrase_key(text)
        findings = []
        for set_id in (*brand.never_asks, URGENCY):
            hit = asserted(text, haystack, ctx.compiled.phrases_in(set_id, haystack))
            if hit is not None:
                findings.append(self._finding(ctx, set_id, hit))
        return findings

    def _finding(self, ctx: CheckContext, set_id: str, phrase: str) -> Finding:
        assert ctx.claim is not None  # run() checked
        brand = ctx.policy.brand(ctx.claim.brand)
        phrases = ctx.policy.document.phrases[set_id]
        if set_id == URGENCY:
            return Finding(
                Code.URGENCY,
                NAME,
                Severity.parse(phrases.severity),
                f"urgency pressure ({phrase!r}) in a message claiming {brand.name}",
                ctx.claim.brand,
                {"phrase": phrase, "set": set_id},
            )
        return Finding(
            Code.BRAND_NEVER_ASKS,
            NAME,
            Severity.parse(phrases.severity),
            f"asks for {phrases.label} ({phrase!r}), which {brand.name} never requests by mail",
            ctx.claim.brand,
            {"phrase": phrase, "set": set_id},
        )

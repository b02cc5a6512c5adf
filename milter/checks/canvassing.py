"""CPF canvassing: cold solicitation to spend someone's CPF credits through a seller.

Since loi n° 2022-1587 of 19 December 2022 (code du travail art. L. 6323-8-1), any
commercial prospecting of CPF holders by phone, SMS, email or social networks to collect
their data or to sell them CPF-funded training is illegal. This is not impersonation: the
sender is a training seller, often under its own name. It is its own category, with its
own finding, rule and banner text.

A message is canvassing when it names the CPF (the ``cpf`` brand's names) and makes at
least one canvassing pitch (phrase set ``cpf_canvassing``: "vos droits CPF expirent",
"formation financée à 100 %" …) outside a negated or warning sentence, and does not come
from the CPF's own domains (whose mail the authentication check judges).
"""

from __future__ import annotations

from collections.abc import Sequence

from milter.checks.base import CheckContext
from milter.checks.wording import asserted
from milter.model.codes import Code
from milter.model.findings import Finding, Severity
from milter.text.confusables import phrase_key

NAME = "canvassing"
BRAND = "cpf"
PHRASES = "cpf_canvassing"
OWNERS = (BRAND, "caissedesdepots")  # the CPF and the body that runs it


class CanvassingCheck:
    """CPF_CANVASSING: a CPF-funded training pitch sent to someone who did not ask."""

    name = NAME
    awaits_io = False  # CPU only: the engine runs it inline

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """At most one finding, naming the pitch and the seller's domain."""
        policy = ctx.policy
        compiled = ctx.compiled
        if BRAND not in policy.brands or PHRASES not in compiled.phrase_keys:
            return ()
        text = ctx.mime.all_text
        haystack = phrase_key(text)
        if not any(bid == BRAND for _, bid in compiled.names_in(haystack)):
            return ()
        pitch = asserted(text, haystack, compiled.phrases_in(PHRASES, haystack))
        if pitch is None:
            return ()
        seller = next((a.domain for a in ctx.mime.from_addresses if a.domain), "")
        if seller and set(compiled.brand_index.official_brands(seller)) & set(OWNERS):
            return ()
        return (
            Finding(
                Code.CPF_CANVASSING,
                NAME,
                Severity.HIGH,
                f"CPF canvassing ({pitch!r}) from {seller or '(no address)'}: commercial "
                "prospecting of CPF holders is illegal (code du travail, art. L. 6323-8-1)",
                BRAND,
                {"phrases": pitch, "seller": seller or "(no address)"},
            ),
        )

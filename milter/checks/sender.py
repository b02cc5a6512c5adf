"""Who the sender pretends to be: brand names over non-brand addresses, mixed scripts,
Reply-To pointing elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from milter.checks.base import CheckContext
from milter.checks.claim import ClaimVia
from milter.model.codes import Code
from milter.model.findings import Finding, Severity
from milter.text.confusables import has_mixed_scripts

NAME = "sender"


class SenderCheck:
    """Display name / Sender / subject naming a brand the address does not belong to."""

    name = NAME

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """Findings about the From, Sender and Reply-To identities."""
        findings: list[Finding] = []
        claim = ctx.claim
        if claim is not None and claim.via is not ClaimVia.FROM_DOMAIN:
            findings.append(_name_over_foreign_address(ctx))
        findings += _mixed_script_names(ctx)
        if claim is not None:
            findings += _reply_elsewhere(ctx)
        return findings


def _name_over_foreign_address(ctx: CheckContext) -> Finding:
    claim = ctx.claim
    assert claim is not None  # caller checked
    brand = ctx.policy.brand(claim.brand)
    official = ", ".join(brand.domains)
    sender = claim.from_domain or "(no address)"
    if claim.via is ClaimVia.SUBJECT:
        return Finding(
            Code.SUBJECT_BRAND,
            NAME,
            Severity.MEDIUM,
            f"subject names {brand.name} but the sender is {sender}, not {official}",
            claim.brand,
            {"subject": claim.evidence, "from_domain": sender, "expected": official},
        )
    return Finding(
        Code.DISPLAY_NAME_BRAND,
        NAME,
        Severity.HIGH,
        f"{claim.via} {claim.evidence!r} names {brand.name} but the address is at "
        f"{sender}, not {official}",
        claim.brand,
        {"name": claim.evidence, "from_domain": sender, "expected": official},
    )


def _mixed_script_names(ctx: CheckContext) -> list[Finding]:
    return [
        Finding(
            Code.DISPLAY_NAME_MIXED_SCRIPT,
            NAME,
            Severity.MEDIUM,
            f"display name {a.display_name!r} mixes alphabets (homoglyph disguise)",
            ctx.claim.brand if ctx.claim else None,
            {"name": a.display_name},
        )
        for a in ctx.mime.from_addresses
        if a.display_name and has_mixed_scripts(a.display_name)
    ]


def _reply_elsewhere(ctx: CheckContext) -> list[Finding]:
    claim = ctx.claim
    assert claim is not None  # caller checked
    brand = ctx.policy.brand(claim.brand)
    return [
        Finding(
            Code.REPLY_TO_FOREIGN,
            NAME,
            Severity.MEDIUM,
            f"replies go to {a.domain}, which is not {brand.name}'s",
            claim.brand,
            {"reply_to": a.address, "expected": ", ".join(brand.domains)},
        )
        for a in ctx.mime.reply_to
        if a.domain
        and claim.brand not in ctx.compiled.brand_index.official_brands(a.domain)
        and a.domain != claim.from_domain
    ]

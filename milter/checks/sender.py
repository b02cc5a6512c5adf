"""Who the sender pretends to be: brand names over non-brand addresses (display name,
local part, subject, body), several From addresses, mixed scripts, Reply-To elsewhere."""

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
    awaits_io = False  # CPU only: the engine runs it inline

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """Findings about the From, Sender and Reply-To identities."""
        findings: list[Finding] = []
        claim = ctx.claim
        if claim is not None and claim.via is not ClaimVia.FROM_DOMAIN:
            findings.append(_name_over_foreign_address(ctx))
        findings += _several_from(ctx)
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
    if claim.via is ClaimVia.LOCAL_PART:
        hosts = ", ".join(claim.link_hosts[:5])
        return Finding(
            Code.LOCAL_PART_BRAND,
            NAME,
            Severity.CRITICAL if claim.link_hosts else Severity.HIGH,
            f"the address {claim.evidence}@{sender} names {brand.name} but is not at {official}"
            + (f", and its links go to {hosts}" if hosts else ""),
            claim.brand,
            {
                "local_part": claim.evidence,
                "from_domain": sender,
                "expected": official,
                "link_hosts": hosts,
            },
        )
    if claim.via is ClaimVia.BODY:
        hosts = ", ".join(claim.link_hosts[:5])
        return Finding(
            Code.BODY_BRAND,
            NAME,
            Severity.MEDIUM,
            f"the text speaks as {brand.name} ({claim.evidence!r}) but the sender is {sender} "
            f"and its links go to {hosts}",
            claim.brand,
            {
                "name": claim.evidence,
                "from_domain": sender,
                "expected": official,
                "link_hosts": hosts,
            },
        )
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


def _several_from(ctx: CheckContext) -> list[Finding]:
    """RFC 5322 §3.6.2: a From with several mailboxes needs a Sender; DMARC cannot evaluate
    it (RFC 9989 §4.4), so a brand's address among them is never proven by it."""
    # Mailboxes only: a bare word or an empty slot ("Name, <x@y>") is a display name the
    # sender forgot to quote, not a second author.
    mailboxes = {a.address.lower().rstrip("."): a for a in ctx.mime.from_addresses if a.domain}
    addresses = list(mailboxes.values())
    if len(addresses) < 2:
        return []
    index = ctx.compiled.brand_index
    branded = [(a, index.official_brands(a.domain)) for a in addresses if a.domain]
    brand_hit = next(((a, owners[0]) for a, owners in branded if owners), None)
    sender = ", ".join(a.address for a in ctx.mime.sender) or "none"
    listed = ", ".join(a.address for a in addresses[:5])
    if brand_hit is None:
        return [
            Finding(
                Code.FROM_MULTIPLE,
                NAME,
                Severity.MEDIUM,
                f"From holds {len(addresses)} addresses ({listed}); Sender: {sender}",
                None,
                {"addresses": listed, "sender": sender, "brand_address": ""},
            )
        ]
    address, brand_id = brand_hit
    name = ctx.policy.brand(brand_id).name
    return [
        Finding(
            Code.FROM_MULTIPLE,
            NAME,
            Severity.HIGH,
            f"From holds {len(addresses)} addresses, one of them {address.address} at "
            f"{name}'s domain: DMARC cannot prove such a From (Sender: {sender})",
            brand_id,
            {"addresses": listed, "sender": sender, "brand_address": address.address},
        )
    ]


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

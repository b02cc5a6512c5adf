"""The banner a French recipient reads: French reasons from templates, brand names with
their article, official advice, canvassing texts, and every link of an unproven lure."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from milter.actions.apply import apply_plan
from milter.engine import scan
from milter.model.envelope import Envelope
from milter.policy.loader import load_policy
from milter.policy.model import Policy
from tests.checks.test_lure_shapes import CANVASSING, LINK, mail

TAG_IMPERSONATION = (
    "rules:\n  - {name: brand-impersonation, replace: true, verdict: tag,\n"
    "     when: {any: [BRAND_AUTH_FAIL, DISPLAY_NAME_BRAND, FROM_LOOKALIKE]}}\n"
)


@pytest.fixture
def tagging(tmp_path: Path) -> Policy:
    """The shipped policy, but impersonation is tagged (banner) instead of quarantined."""
    (tmp_path / "local.yaml").write_text(TAG_IMPERSONATION)
    return load_policy(tmp_path)


async def delivered(raw: bytes, policy: Policy) -> tuple[str, str]:
    result = await scan(raw, Envelope(), policy)
    out = apply_plan(raw, result.plan)
    msg = message_from_bytes(out, policy=compat32)
    leaves: list[Message] = [p for p in msg.walk() if not p.is_multipart()]
    html = leaves[0].get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
    return html, result.verdict.disposition


async def test_french_block_is_french_with_articles_and_official_advice(
    tagging: Policy,
) -> None:
    body = f"<p>Votre remboursement vous attend.</p>{LINK}"
    raw = mail(body, sender="Assurance Maladie <remboursement@relais.example>")
    html, _ = await delivered(raw, tagging)
    assert "venant de l&#x27;Assurance Maladie" in html
    assert (
        "le nom affich&#233; &#171; Assurance Maladie &#187; est celui de l&#x27;Assurance" in html
    )
    assert "signal-spam.fr" in html
    assert "33700" in html
    assert "0 805 805 817" in html
    assert "3646" in html


async def test_two_brands_are_both_named(tagging: Policy) -> None:
    body = f"<p>Votre CPF : connectez-vous avec vos identifiants FranceConnect.</p>{LINK}"
    raw = mail(body, sender="Mon Compte Formation <x@relais.example>")
    html, _ = await delivered(raw, tagging)
    assert "venant de Mon Compte Formation (CPF) et de FranceConnect" in html
    assert "from Mon Compte Formation (CPF) and FranceConnect" in html


async def test_canvassing_gets_its_own_banner_saying_it_is_illegal(policy: Policy) -> None:
    raw = mail(CANVASSING, sender="Conseiller <offres@formapro.example>")
    html, disposition = await delivered(raw, policy)
    assert disposition == "tag"
    assert "d&#233;marchage ill&#233;gal au CPF" in html
    assert "L. 6323-8-1" in html
    assert "signal.conso.gouv.fr" in html
    assert "could not confirm" not in html  # not worded as impersonation


async def test_every_link_of_an_unproven_brand_message_is_defanged(tagging: Policy) -> None:
    tracker = '<a href="https://click.tracker.example/c?id=1">suivi</a>'
    raw = mail(f"<p>Bonjour</p>{tracker}", sender="Assurance Maladie <x@relais.example>")
    html, _ = await delivered(raw, tagging)
    assert 'href="https://click.tracker.example' not in html


async def test_the_admin_may_keep_other_links_live(tmp_path: Path) -> None:
    (tmp_path / "local.yaml").write_text(
        "actions:\n  unproven_brand_links: suspicious\n" + TAG_IMPERSONATION
    )
    tracker = '<a href="https://click.tracker.example/c?id=1">suivi</a>'
    raw = mail(f"<p>Bonjour</p>{tracker}", sender="Assurance Maladie <x@relais.example>")
    html, disposition = await delivered(raw, load_policy(tmp_path))
    assert disposition == "tag"
    assert 'href="https://click.tracker.example/c?id=1"' in html

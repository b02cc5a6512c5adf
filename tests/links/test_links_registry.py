"""One brand registry: the policy's brands, one index, one answer to "is it official"."""

from __future__ import annotations

from pathlib import Path

import pytest

import milter.links
from milter.checks.base import CheckContext
from milter.checks.claim import ClaimVia, find_claim
from milter.checks.phrases import PhrasesCheck
from milter.checks.sender import SenderCheck
from milter.cli.lookalike import classify
from milter.links.registry import brand_index, is_official, official_brand, policy_brands
from milter.mime.parse import parse_message
from milter.model.envelope import Envelope
from milter.policy.loader import load_policy
from milter.policy.model import Policy


def test_the_index_is_built_from_the_policy_brands_only(policy: Policy) -> None:
    index = brand_index(policy)
    assert [b.brand_id for b in index.brands] == list(policy.brands)
    assert brand_index(policy) is index  # built once per loaded policy
    assert not hasattr(milter.links, "DEFAULT_BRANDS")


@pytest.mark.parametrize(
    ("domain", "owners"),
    [
        ("impots.gouv.fr", ("dgfip", "gouv")),
        ("dgfip.finances.gouv.fr", ("dgfip", "gouv")),
        ("finances.gouv.fr", ("gouv",)),
        ("www.moncompteformation.gouv.fr", ("cpf", "gouv")),
        ("MAIL.AMELI.FR.", ("ameli",)),
        ("juridoc.gouv.nc", ("gouv",)),
        ("ameli.fr.evil.example", ()),
        ("amelie-les-bains.fr", ()),
        ("", ()),
    ],
)
def test_official_owners_most_specific_first(policy: Policy, domain: str, owners: tuple) -> None:
    assert brand_index(policy).official_brands(domain) == owners
    assert official_brand(domain, policy) == (owners[0] if owners else None)
    for brand_id in owners:
        assert is_official(domain, brand_id, policy)
    assert not is_official(domain, "laposte", policy)


@pytest.mark.parametrize(
    ("sender", "brand"),
    [
        ("x@impots.gouv.fr", "dgfip"),  # the service, not the generic gouv brand
        ("x@interieur.gouv.fr", "gouv"),
        ("x@info.ameli.fr", "ameli"),
        ("x@colissimo.fr", "laposte"),
    ],
)
def test_from_domain_claims_use_the_same_answer(policy: Policy, sender: str, brand: str) -> None:
    mime = parse_message(f"From: {sender}\r\nSubject: x\r\n\r\nx\r\n".encode())
    claim = find_claim(mime, policy)
    assert claim is not None
    assert (claim.brand, claim.via) == (brand, ClaimVia.FROM_DOMAIN)


async def test_reply_to_a_brand_subdomain_is_not_foreign(policy: Policy) -> None:
    raw = (
        b"From: Assurance Maladie <x@example.org>\r\nReply-To: a@assure.ameli.fr\r\n"
        b"Subject: x\r\n\r\nx\r\n"
    )
    mime = parse_message(raw)
    ctx = CheckContext(Envelope(), mime, policy, find_claim(mime, policy), None)
    codes = [f.code for f in await SenderCheck().run(ctx)]
    assert "DISPLAY_NAME_BRAND" in codes
    assert "REPLY_TO_FOREIGN" not in codes


def test_admin_policy_extends_the_index(tmp_path: Path) -> None:
    (tmp_path / "brands.yaml").write_text(
        "brands:\n  ameli:\n    sending_domains: [ameli-news.example.fr]\n", encoding="utf-8"
    )
    policy = load_policy(tmp_path)
    assert brand_index(policy).classify("x.ameli-news.example.fr").technique == "official"
    assert official_brand("x.ameli-news.example.fr", policy) == "ameli"
    assert (
        "ameli-news.example.fr"
        in next(b for b in policy_brands(policy) if b.brand_id == "ameli").domains
    )


def test_tocsin_lookalike_answers_from_the_same_index(policy: Policy) -> None:
    answer = classify("mon-gouv.fr", policy)
    hit = brand_index(policy).classify("mon-gouv.fr")
    assert hit is not None
    assert (answer["brand"], answer["technique"], answer["imitates"]) == (
        "gouv",
        "combosquat",
        "gouv.fr",
    )
    assert answer["evidence"] == hit.evidence


@pytest.mark.parametrize(
    "domain",
    [
        "laposte.net",  # La Poste's own mail service
        "ants.questionnaire.interieur.gouv.fr",  # a brand label under another gouv.fr body
        "impots.societenumerique.gouv.fr",
        "clavis.anah.fr",
    ],
)
def test_public_bodies_are_not_lookalikes(policy: Policy, domain: str) -> None:
    hit = brand_index(policy).classify(domain)
    assert hit is not None
    assert hit.technique == "official"


async def test_a_state_service_password_reset_is_not_a_never_asks_finding(policy: Policy) -> None:
    raw = (
        b"From: ANTS <ne-pas-repondre@demarches.interieur.gouv.fr>\r\nSubject: Compte\r\n\r\n"
        b"Cliquez ici pour choisir un nouveau mot de passe.\r\n"
    )
    mime = parse_message(raw)
    claim = find_claim(mime, policy)
    assert claim is not None
    assert claim.brand == "gouv"
    assert not policy.brand("gouv").strict
    ctx = CheckContext(Envelope(), mime, policy, claim, None)
    assert [f.code for f in await PhrasesCheck().run(ctx)] == []

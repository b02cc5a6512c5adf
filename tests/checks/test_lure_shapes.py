"""Lure shapes that used to pass, and genuine wording that used to be held against the brand."""

from __future__ import annotations

import pytest

from milter.engine import scan
from milter.engine.decide import decide, score_text
from milter.model.auth import AuthResult, AuthStatus
from milter.model.codes import Code, undeclared_evidence
from milter.model.envelope import Envelope
from milter.model.findings import Finding, Severity
from milter.model.verdict import Disposition, Verdict
from milter.policy.model import Policy


def mail(body: str, *, sender: str, subject: str = "Information", extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: a@example.org\r\nSubject: {subject}\r\n{extra}"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body>{body}</body></html>\r\n"
    ).encode()


async def verdict_of(raw: bytes, policy: Policy) -> Verdict:
    result = await scan(raw, Envelope(), policy)
    for finding in result.verdict.findings:
        assert not undeclared_evidence(finding.code, set(finding.evidence)), finding
    return result.verdict


def codes(verdict: Verdict) -> dict[str, Severity]:
    return {f.code: f.severity for f in verdict.findings}


LINK = '<a href="https://formation-eligible.example/go">Cliquez ici</a>'


@pytest.mark.parametrize(
    "address",
    ["mon.compte.formation@relais-info.example", "moncompteformation-info@relais.example"],
)
async def test_brand_in_the_local_part_with_foreign_links_is_impersonation(
    policy: Policy, address: str
) -> None:
    raw = mail(f"<p>Votre dossier est prêt.</p>{LINK}", sender=f"<{address}>")
    verdict = await verdict_of(raw, policy)
    assert verdict.brand == "cpf"
    assert codes(verdict)[Code.LOCAL_PART_BRAND] is Severity.CRITICAL
    assert verdict.disposition is Disposition.QUARANTINE
    assert verdict.reasons[0].rule == "brand-local-part"


async def test_brand_in_the_local_part_without_links_is_a_lesser_claim(policy: Policy) -> None:
    verdict = await verdict_of(mail("<p>Bonjour</p>", sender="<ameli-info@relais.example>"), policy)
    assert verdict.brand == "ameli"
    assert codes(verdict)[Code.LOCAL_PART_BRAND] is Severity.HIGH
    assert verdict.disposition is Disposition.TAG


async def test_a_display_name_that_only_looks_like_the_brand_claims_it(policy: Policy) -> None:
    raw = mail("<p>Bonjour</p>", sender='"Arneli Remboursement" <x@relais.example>')
    verdict = await verdict_of(raw, policy)
    assert verdict.brand == "ameli"
    assert Code.DISPLAY_NAME_BRAND in codes(verdict)


BODY_LURE = (
    "<p>Votre compte personnel de formation (CPF) a été crédité de 1 500 €.</p>"
    f"<p>Connectez-vous pour valider : {LINK}</p>"
)


async def test_body_only_claim_with_a_call_to_action_and_foreign_link(policy: Policy) -> None:
    verdict = await verdict_of(mail(BODY_LURE, sender="<info@relais.example>"), policy)
    assert verdict.brand == "cpf"
    assert codes(verdict)[Code.BODY_BRAND] is Severity.MEDIUM
    finding = next(f for f in verdict.findings if f.code == Code.BODY_BRAND)
    assert finding.evidence["link_hosts"] == "formation-eligible.example"
    assert verdict.disposition is not Disposition.ACCEPT


@pytest.mark.parametrize(
    "body",
    [
        # a mention, no possessive, no call to action: a newsletter quoting the brand
        "<p>Le CPF finance des formations, selon un rapport.</p>" + LINK,
        # possessive, but the only link is the brand's own site
        "<p>Votre espace ameli : connectez-vous sur "
        '<a href="https://www.ameli.fr/assure">ameli.fr</a></p>',
    ],
)
async def test_body_mentions_without_the_lure_shape_claim_nothing(
    policy: Policy, body: str
) -> None:
    verdict = await verdict_of(mail(body, sender="<news@presse.example>"), policy)
    assert verdict.brand is None
    assert not [f for f in verdict.findings if f.brand]


async def test_several_from_addresses_one_at_a_brand_is_a_finding(policy: Policy) -> None:
    sender = "Assurance Maladie <info@ameli.fr>, Service <relais@relais.example>"
    verdict = await verdict_of(mail("<p>Bonjour</p>", sender=sender), policy)
    multiple = [f for f in verdict.findings if f.code == Code.FROM_MULTIPLE]
    assert multiple
    assert multiple[0].severity is Severity.HIGH
    assert multiple[0].brand == "ameli"
    assert multiple[0].evidence["sender"] == "none"
    assert verdict.disposition is not Disposition.ACCEPT
    # a display name left unquoted ("Name, <x@y>") is one author, not two
    single = await verdict_of(mail("<p>x</p>", sender="Dupont, <jean@example.org>"), policy)
    assert Code.FROM_MULTIPLE not in codes(single)


async def test_a_lure_naming_two_brands_names_both(policy: Policy) -> None:
    body = (
        "<p>Votre compte CPF expire. Connectez-vous avec vos identifiants FranceConnect "
        f"pour conserver vos droits : {LINK}</p>"
    )
    verdict = await verdict_of(mail(body, sender="Mon Compte Formation <x@relais.example>"), policy)
    claimed = [f.brand for f in verdict.findings if f.code == Code.BRAND_CLAIM]
    assert claimed == ["cpf", "franceconnect"]
    assert verdict.brand == "cpf"


async def test_ameli_never_asks_identity_documents_or_proof_of_address(policy: Policy) -> None:
    body = (
        "<p>Pour recevoir votre nouvelle carte Vitale, envoyez une copie de votre "
        f"carte d'identité et un justificatif de domicile.</p>{LINK}"
    )
    verdict = await verdict_of(mail(body, sender="Assurance Maladie <x@relais.example>"), policy)
    asks = [f for f in verdict.findings if f.code == Code.BRAND_NEVER_ASKS]
    assert {f.evidence["set"] for f in asks} == {"identity_documents"}


async def test_ameli_own_outbound_number_is_not_foreign(policy: Policy) -> None:
    own = "<p>Nous vous rappellerons depuis le 05 53 35 62 37.</p>"
    foreign = "<p>Rappelez le 01 84 60 12 34.</p>"
    ok = await verdict_of(mail(own, sender="Assurance Maladie <x@relais.example>"), policy)
    bad = await verdict_of(mail(foreign, sender="Assurance Maladie <x@relais.example>"), policy)
    assert Code.PHONE_NOT_OFFICIAL not in codes(ok)
    assert Code.PHONE_NOT_OFFICIAL in codes(bad)


CANVASSING = (
    "<p>Bonjour, vos droits CPF expirent bientôt ! Formation bureautique financée à 100 % "
    "par votre CPF, sans reste à charge. Répondez OUI pour être rappelé.</p>"
)


async def test_cpf_canvassing_is_its_own_category(policy: Policy) -> None:
    raw = mail(CANVASSING, sender="Conseiller Formation <offres@formapro.example>")
    verdict = await verdict_of(raw, policy)
    canvassing = [f for f in verdict.findings if f.code == Code.CPF_CANVASSING]
    assert canvassing
    assert canvassing[0].brand == "cpf"
    assert canvassing[0].evidence["seller"] == "formapro.example"
    assert "L. 6323-8-1" in canvassing[0].text
    assert verdict.disposition is Disposition.TAG
    assert verdict.reasons[0].rule == "cpf-canvassing"


async def test_a_warning_against_canvassing_is_not_canvassing(policy: Policy) -> None:
    body = (
        "<p>Attention : ne répondez jamais aux messages qui vous demandent vos droits CPF. "
        "Méfiez-vous des formations financées à 100 % proposées par téléphone.</p>"
    )
    verdict = await verdict_of(mail(body, sender="Mairie <info@mairie.example>"), policy)
    assert Code.CPF_CANVASSING not in codes(verdict)


@pytest.mark.parametrize(
    ("sentence", "counted"),
    [
        ("Nous ne vous demanderons jamais vos coordonnées bancaires.", False),
        ("L'Assurance Maladie ne vous demande jamais votre RIB par courriel.", False),
        ("Ne communiquez jamais votre mot de passe.", False),
        ("We will never ask for your bank details.", False),
        ("Méfiez-vous des messages réclamant vos coordonnées bancaires.", False),
        ("Merci de mettre à jour vos coordonnées bancaires.", True),
        ("Ne tardez pas à nous transmettre vos coordonnées bancaires.", True),
    ],
)
async def test_phrases_understand_negation_and_warnings(
    policy: Policy, sentence: str, counted: bool
) -> None:
    raw = mail(f"<p>{sentence}</p>", sender="Assurance Maladie <x@relais.example>")
    verdict = await verdict_of(raw, policy)
    asks = [f for f in verdict.findings if f.code == Code.BRAND_NEVER_ASKS]
    assert bool(asks) is counted


def finding(code: str, severity: Severity, **evidence: str) -> Finding:
    return Finding(code, "test", severity, code, "ameli", evidence)


CLAIM = finding("BRAND_CLAIM", Severity.INFO, via="from-domain", text="ameli.fr")
ASKS = finding("BRAND_NEVER_ASKS", Severity.HIGH, phrase="RIB", set="bank_details")
URGENT = finding("URGENCY", Severity.LOW, phrase="immédiatement", set="urgency")
DMARC_PASS = AuthResult("dmarc", AuthStatus.PASS, props={"header.from": "ameli.fr"})


def test_proven_brand_mail_is_not_tagged_for_its_own_phrasing(policy: Policy) -> None:
    proven = decide([CLAIM, ASKS, URGENT], policy, brand="ameli", auth=[DMARC_PASS])
    assert proven.disposition is Disposition.ACCEPT
    assert proven.score == 0
    assert any(r.rule == "brand-proven" for r in proven.reasons)
    unproven = decide([CLAIM, ASKS, URGENT], policy, brand="ameli", auth=[])
    assert unproven.disposition is Disposition.TAG


def test_a_contradicting_number_keeps_the_phrasing_counted(policy: Policy) -> None:
    phone = finding("PHONE_NOT_OFFICIAL", Severity.MEDIUM, numbers="0184601234", official="3646")
    verdict = decide([CLAIM, ASKS, phone], policy, brand="ameli", auth=[DMARC_PASS])
    assert verdict.disposition is Disposition.TAG
    assert not any(r.rule == "brand-proven" for r in verdict.reasons)


def test_score_reason_says_what_happened(policy: Policy) -> None:
    scoring = policy.document.scoring
    assert score_text(6, scoring) == "score 6 ≥ tag threshold 3"
    assert score_text(12, scoring) == "score 12 ≥ quarantine threshold 12"
    assert score_text(2, scoring) == "score 2 below every threshold (tag 3)"
    tagged = decide([ASKS], policy, brand="ameli")
    assert tagged.reasons[0].text == "score 6 ≥ tag threshold 3"

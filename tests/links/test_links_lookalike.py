"""Brand-lookalike classification: one case per technique, and legitimate non-cases."""

from __future__ import annotations

import pytest

from milter.links.brands import BrandDomains
from milter.links.lookalike import TECHNIQUES, BrandIndex, Lookalike
from milter.links.registry import brand_index
from milter.policy.model import Policy


@pytest.fixture(scope="module")
def index(policy: Policy) -> BrandIndex:
    return brand_index(policy)


def _classify(index: BrandIndex, domain: str) -> Lookalike:
    result = index.classify(domain)
    assert result is not None, domain
    return result


@pytest.mark.parametrize(
    ("domain", "brand", "official", "technique"),
    [
        # homoglyph: UTS #39 skeleton (Cyrillic а, rn for m, digit one for l)
        ("аmeli.fr", "ameli", "ameli.fr", "homoglyph"),
        ("xn--meli-43d.fr", "ameli", "ameli.fr", "homoglyph"),
        ("arneli.fr", "ameli", "ameli.fr", "homoglyph"),
        ("ame1i.fr", "ameli", "ameli.fr", "homoglyph"),
        ("lmpots.fr", "dgfip", "impots.gouv.fr", "homoglyph"),
        # idn: accents, or a near miss in another script
        ("amélì.fr", "ameli", "ameli.fr", "idn"),
        ("xn--80ak0ahl7io2b.fr", "laposte", "laposte.fr", "idn"),
        # typo family
        ("amel.fr", "ameli", "ameli.fr", "typo"),
        ("ameli0.fr", "ameli", "ameli.fr", "typo"),
        ("aemli.fr", "ameli", "ameli.fr", "typo"),
        ("amelli.fr", "ameli", "ameli.fr", "typo"),
        ("amdli.fr", "ameli", "ameli.fr", "typo"),
        ("caissedesdepot.fr", "caissedesdepots", "caissedesdepots.fr", "typo"),
        ("monconpteformatoin-gouv.fr", "cpf", "moncompteformation.gouv.fr", "typo"),
        ("servicepublic.fr", "service-public", "service-public.fr", "typo"),
        ("impots.guv.fr", "dgfip", "impots.gouv.fr", "typo"),
        ("ajts.fr", "ants", "ants.gouv.fr", "typo"),
        # tld-swap and tld-glued
        ("ameli.cc", "ameli", "ameli.fr", "tld-swap"),
        ("moncompteformation.fr", "cpf", "moncompteformation.gouv.fr", "tld-swap"),
        ("www.ants.cf", "ants", "ants.gouv.fr", "tld-swap"),
        ("moncompteformation-gouv.fr", "cpf", "moncompteformation.gouv.fr", "tld-glued"),
        ("ameli-fr.com", "ameli", "ameli.fr", "tld-glued"),
        ("impotsgouv.fr", "dgfip", "impots.gouv.fr", "tld-glued"),
        ("ants.gouv-fr.com", "ants", "ants.gouv.fr", "tld-glued"),
        # subdomain
        ("cfspart.impots.gouv.fr.loginmdp.hansor.pw", "dgfip", "impots.gouv.fr", "subdomain"),
        ("assure.ameli.suivre-fr.info", "ameli", "ameli.fr", "subdomain"),
        ("caf.fr.wps.local.portal.signin.example.eu", "caf", "caf.fr", "subdomain"),
        # combosquat, accents folded, short tokens with word boundaries
        ("ameli-remboursement.fr", "ameli", "ameli.fr", "combosquat"),
        ("assure-idamelifrds.recouve-idsrn.com", "ameli", "ameli.fr", "combosquat"),
        ("impôts-remboursement.com", "dgfip", "impots.gouv.fr", "combosquat"),
        ("ma-caf-allocataires.example.com", "caf", "caf.fr", "combosquat"),
        ("actifants.fr", "ants", "ants.gouv.fr", "combosquat"),
        ("cpf-formation.com", "cpf", "moncompteformation.gouv.fr", "combosquat"),
        ("ameli-automated.000webhostapp.com", "ameli", "ameli.fr", "combosquat"),
        ("arneli-remboursement.fr", "ameli", "ameli.fr", "combosquat"),
        ("gererarneli.fr", "ameli", "ameli.fr", "combosquat"),
        ("mon-gouv.fr", "gouv", "gouv.fr", "combosquat"),
    ],
)
def test_lookalike_techniques(
    index: BrandIndex, domain: str, brand: str, official: str, technique: str
) -> None:
    result = _classify(index, domain)
    assert (result.brand_id, result.official, result.technique) == (brand, official, technique)
    assert result.is_lookalike
    assert result.technique in TECHNIQUES
    assert official in result.evidence


def test_evidence_strings(index: BrandIndex) -> None:
    combo = _classify(index, "ameli-remboursement.fr")
    assert combo.evidence == (
        'ameli-remboursement.fr ~ ameli.fr: combosquat (brand token "ameli" + "remboursement")'
    )
    idn = _classify(index, "xn--meli-43d.fr")
    assert idn.evidence.startswith("аmeli.fr (xn--meli-43d.fr) ~ ameli.fr: homoglyph")
    assert idn.host == "аmeli.fr"
    assert idn.host_ascii == "xn--meli-43d.fr"
    typo = _classify(index, "amdli.fr")
    assert typo.detail.startswith("keyboard replacement")
    assert _classify(index, "aemli.fr").detail.startswith("transposition")
    assert _classify(index, "amel.fr").detail.startswith("omission")
    assert _classify(index, "ammeli.fr").detail.startswith("repetition")
    assert _classify(index, "amehi.fr").detail.startswith("bitsquatting")


@pytest.mark.parametrize(
    "domain",
    [
        "ameli.fr",
        "www.ameli.fr",
        "espacepro.ameli.fr",
        "AMELI.FR.",
        "assurance-maladie.fr",
        "impots.gouv.fr",
        "cfspart.impots.gouv.fr",
        "moncompteformation.gouv.fr",
        "www.moncompteformation.gouv.fr",
        "franceconnect.gouv.fr",
        "app.franceconnect.gouv.fr",
        "ants.gouv.fr",
        "caissedesdepots.fr",
        "www.service-public.fr",
        "cybermalveillance.gouv.fr",
        "laposte.net",
        "anything.gouv.fr",
    ],
)
def test_official_domains_are_not_lookalikes(index: BrandIndex, domain: str) -> None:
    result = _classify(index, domain)
    assert result.technique == "official"
    assert not result.is_lookalike


@pytest.mark.parametrize(
    "domain",
    [
        "servants.com",
        "elephants.org",
        "enfants.fr",
        "www.nosenfantsdabord.com",
        "amelie-les-bains.com",
        "www.lyceeameliezurcher.net",
        "amelioration-habitat.fr",
        "camelia.fr",
        "brian.carnell.com",
        "carnell.fr",
        "cafe.fr",
        "www.monvillage.cafe",
        "gouy.fr",
        "juridoc.gouv.nc",
        "google.com",
        "amazon.fr",
        "leparisien.fr",
        "assurance.fr",
        "192.168.1.1",
        "[::1]",
        "",
        "fr",
        "localhost",
    ],
)
def test_legit_near_misses(index: BrandIndex, domain: str) -> None:
    result = index.classify(domain)
    assert result is None or not result.is_lookalike, result


def test_custom_brand_list_and_cache() -> None:
    brand = BrandDomains("acme", "ACME", ("acme-bank.example",), ("acmebank", "acme-bank"))
    index = BrandIndex.build([brand], cache_size=4)
    assert _classify(index, "acme-bank.example").technique == "official"
    assert _classify(index, "acmebank-login.com").technique == "combosquat"
    assert _classify(index, "acme-bank.net").technique == "tld-swap"
    assert index.classify("ameli-remboursement.fr") is None
    index.cache_clear()
    assert _classify(index, "acme-bank.net").brand_id == "acme"


def test_short_tokens_need_word_boundaries(index: BrandIndex) -> None:
    assert _classify(index, "ants-gouv.fr").brand_id == "ants"
    assert _classify(index, "services-ants.com").brand_id == "ants"
    assert index.classify("pedants.com") is None
    assert index.classify("mutants-pizza.com") is None

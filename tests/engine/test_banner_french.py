"""Every finding code says its banner reason in real French and in English, from the code
registry; the checks' own English words (evidence, trick names) never reach the French
block; the score reason says what the score did."""

from __future__ import annotations

import re

import pytest

from milter.actions.targets import LinkTargets
from milter.engine.banner_text import banner_blocks, reason_text
from milter.engine.decide import decide
from milter.model.codes import CODES, Code
from milter.model.findings import Finding, Severity
from milter.model.verdict import Disposition, Verdict
from milter.policy.model import Policy

#: Realistic evidence for every key a code may carry; ``failed`` is what the auth check
#: really writes (English), ``tricks`` the links check's flag names.
SAMPLE = {
    "name": "Assurance Maladie",
    "from_domain": "envoi-rapide.test",
    "expected": "ameli.fr",
    "local_part": "ameli.info",
    "link_hosts": "envoi-rapide.test",
    "subject": "Remboursement en attente",
    "addresses": "a@ameli.fr, b@envoi-rapide.test",
    "sender": "",
    "brand_address": "a@ameli.fr",
    "reply_to": "reponse.test",
    "phrase": "coordonnées bancaires",
    "set": "bank_details",
    "phrases": "vos droits CPF expirent",
    "seller": "Formation Plus",
    "numbers": "01 23 45 67 89",
    "official": "3646",
    "count": "2",
    "defects": "StartBoundaryNotFoundDefect",
    "limit": "parts",
    "where": "mime",
    "detail": "more than 100 parts",
    "check": "links",
    "error": "timed out",
    "failed": "no aligned DMARC pass (dmarc=fail: no record); no valid DKIM signature",
    "policy": "reject",
    "reason": "SPF and DKIM not aligned",
    "methods": "dmarc",
    "results": "dmarc=pass",
    "authserv_ids": "mx.example.fr",
    "url": "https://ameli.fr@envoi-rapide.test/",
    "host": "arneli.fr",
    "host_ascii": "arneli.fr",
    "imitates": "ameli.fr",
    "technique": "homoglyph",
    "context": "brand-claim",
    "shown": "www.ameli.fr",
    "shown_ascii": "www.ameli.fr",
    "href": "https://envoi-rapide.test/",
    "real_host": "envoi-rapide.test",
    "real_host_ascii": "envoi-rapide.test",
    "tricks": "bidi-chars, data-uri, ip-obfuscated, userinfo",
    "via": "display-name",
    "text": "Assurance Maladie",
}
ENGLISH = re.compile(
    r"\b(the|and|with|which|from|uses?|links?|not|could|no|pass|valid|signature|sender|"
    r"check|userinfo|bidi|chars|data-uri|obfuscated|display|aligned)\b",
    re.IGNORECASE,
)
FRENCH_WORDS = re.compile(r"\b(le|la|les|l'|un|une|des|du|de|d'|n'a|vous|votre|vos)\b", re.I)


def finding(code: Code) -> Finding:
    keys = CODES[code].evidence
    return Finding(
        code, "test", Severity.HIGH, "english text", "ameli", {k: SAMPLE[k] for k in keys}
    )


@pytest.mark.parametrize("code", list(CODES))
def test_every_code_has_a_french_and_an_english_reason(policy: Policy, code: Code) -> None:
    banners = policy.document.banners
    assert code in banners["fr"].reasons, f"{code}: no French banner sentence"
    assert code in banners["en"].reasons, f"{code}: no English banner sentence"
    french = reason_text(finding(code), banners["fr"], policy, "fr")
    english = reason_text(finding(code), banners["en"], policy, "en")
    assert "{" not in french + english, (french, english)
    assert "english text" not in french + english  # never the check's own text
    assert FRENCH_WORDS.search(french), french
    leaked = ENGLISH.findall(french.replace("Assurance Maladie", ""))
    assert not leaked, f"{code}: English inside the French sentence {french!r}: {leaked}"
    assert french != english


def test_brand_names_keep_their_french_article(policy: Policy) -> None:
    fr = policy.document.banners["fr"]
    text = reason_text(finding(Code.BRAND_NEVER_ASKS), fr, policy, "fr")
    assert "ce que l'Assurance Maladie ne demande jamais" in text
    assert "é" in reason_text(finding(Code.BRAND_AUTH_FAIL), fr, policy, "fr")


def test_link_tricks_are_named_in_each_language(policy: Policy) -> None:
    trick = finding(Code.LINK_TRICK)
    verdict = Verdict(Disposition.TAG, "ameli", 6.0, (trick,), ())
    fr, en = banner_blocks(verdict, policy, ("fr", "en"), LinkTargets())
    assert "un faux nom de site placé avant « @ »" in fr.reasons[0]
    assert "des caractères qui inversent le sens du texte" in fr.reasons[0]
    assert "userinfo" not in fr.reasons[0]
    assert 'a fake site name placed before "@"' in en.reasons[0]


def test_a_tagged_message_says_which_threshold_its_score_reached(policy: Policy) -> None:
    tag = policy.document.scoring.thresholds.tag
    assert tag is not None
    medium = Finding(Code.DMARC_FAIL, "auth", Severity.MEDIUM, "x", None, SAMPLE_DMARC)
    findings = [medium]
    verdict = decide(findings, policy)
    while verdict.disposition is Disposition.ACCEPT:  # add findings until the score tags
        findings.append(medium)
        verdict = decide(findings, policy)
    [reason] = [r for r in verdict.reasons if r.rule == "score"]
    assert verdict.disposition is Disposition.TAG
    assert reason.text == f"score {verdict.score:g} ≥ tag threshold {tag:g}"
    assert "below" not in reason.text
    assert "under" not in reason.text


SAMPLE_DMARC = {"from_domain": "envoi-rapide.test", "policy": "reject", "reason": "no pass"}

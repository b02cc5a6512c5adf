"""What each finding code means, in the reader's language, for the message page and the
link warning page.

The documentation of each code (``milter.model.codes``) is written for admins (rules,
severities, policy keys); the lines here are for whoever reads the page, in French and in
plain English. A code without a line here falls back to its documentation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from milter.model.codes import CODES, Code

_FR: dict[str, str] = {
    "BRAND_CLAIM": "le message se réclame d'une marque protégée",
    "DISPLAY_NAME_BRAND": "le nom affiché de l'expéditeur cite une marque, mais l'adresse "
    "n'est pas celle de la marque",
    "LOCAL_PART_BRAND": "la partie avant le @ de l'adresse cite une marque, "
    "sur un domaine étranger",
    "SUBJECT_BRAND": "l'objet cite une marque, mais l'expéditeur n'est pas la marque",
    "BODY_BRAND": "seul le corps cite une marque, avec un appel à l'action et des liens "
    "vers d'autres sites",
    "FROM_MULTIPLE": "l'en-tête From contient plusieurs adresses (DMARC ne peut pas l'évaluer)",
    "DISPLAY_NAME_MIXED_SCRIPT": "le nom affiché mélange des alphabets "
    "(déguisement par homoglyphes)",
    "REPLY_TO_FOREIGN": "les réponses partent vers un domaine qui n'est pas celui de la marque",
    "BRAND_NEVER_ASKS": "demande ce que la marque ne demande jamais par courriel",
    "URGENCY": "pression d'urgence dans un message qui se réclame d'une marque",
    "CPF_CANVASSING": "démarchage pour dépenser des droits CPF, interdit depuis la loi "
    "n° 2022-1587",
    "PHONE_NOT_OFFICIAL": "un numéro de rappel que la marque ne publie pas",
    "MIME_DEFECT": "structure MIME malformée",
    "LIMIT_EXCEEDED": "une limite d'analyse a été atteinte ; le message a été analysé jusque-là",
    "CHECK_ERROR": "une vérification a échoué ou dépassé son délai",
    "BRAND_AUTH_FAIL": "une marque revendiquée sans la preuve exigée (DMARC aligné, "
    "signature DKIM attendue)",
    "DMARC_FAIL": "échec DMARC",
    "AUTH_TEMPERROR": "erreur DNS temporaire pendant l'authentification",
    "AUTH_SKIPPED": "analyse hors ligne : rien n'a été vérifié",
    "AUTH_UPSTREAM": "résultat repris d'un Authentication-Results amont de confiance",
    "LINK_LOOKALIKE": "un lien vers un sosie du domaine d'une marque",
    "LINK_TEXT_MISMATCH": "le texte du lien affiche le domaine d'une marque, mais le lien "
    "mène ailleurs",
    "LINK_TRICK": "lien piégé : identifiants dans l'URL, adresse IP, data:, caractères "
    "invisibles ou bidi",
    "FROM_LOOKALIKE": "le domaine de l'expéditeur est un sosie du domaine d'une marque",
}


_EN: dict[str, str] = {
    "BRAND_CLAIM": "the message claims to come from a protected brand",
    "DISPLAY_NAME_BRAND": "the sender's display name names a brand, but the address is not "
    "the brand's",
    "LOCAL_PART_BRAND": "the part before the @ of the address names a brand, on a foreign domain",
    "SUBJECT_BRAND": "the subject names a brand, but the sender is not the brand",
    "BODY_BRAND": "only the body names a brand, with a call to action and links to other sites",
    "FROM_MULTIPLE": "the From header holds several addresses (DMARC cannot evaluate it)",
    "DISPLAY_NAME_MIXED_SCRIPT": "the display name mixes alphabets (homoglyph disguise)",
    "REPLY_TO_FOREIGN": "replies go to a domain that is not the brand's",
    "BRAND_NEVER_ASKS": "asks for something the brand never asks for by email",
    "URGENCY": "urgency pressure in a message claiming to come from a brand",
    "CPF_CANVASSING": "canvassing to spend CPF training credits, illegal since loi n° 2022-1587",
    "PHONE_NOT_OFFICIAL": "a callback number the brand does not publish",
    "MIME_DEFECT": "malformed MIME structure",
    "LIMIT_EXCEEDED": "a scanning limit was reached; the message was scanned up to it",
    "CHECK_ERROR": "a check failed or timed out",
    "BRAND_AUTH_FAIL": "a brand claimed without the required proof (aligned DMARC, expected "
    "DKIM signature)",
    "DMARC_FAIL": "DMARC failure",
    "AUTH_TEMPERROR": "temporary DNS failure during authentication",
    "AUTH_SKIPPED": "offline scan: nothing was verified",
    "AUTH_UPSTREAM": "result taken from a trusted upstream Authentication-Results",
    "LINK_LOOKALIKE": "a link to a lookalike of a brand's domain",
    "LINK_TEXT_MISMATCH": "the link text shows a brand's domain, but the link goes elsewhere",
    "LINK_TRICK": "trapped link: credentials in the URL, IP address, data:, invisible or "
    "bidi characters",
    "FROM_LOOKALIKE": "the sender's domain is a lookalike of a brand's domain",
}


def meaning(code: object, lang: str) -> str:
    """One line saying what ``code`` means, in French or English ("" if unknown)."""
    name = str(code)
    lines = _EN if lang == "en" else _FR
    if name in lines:
        return lines[name]
    try:
        return CODES[Code(name)].doc
    except ValueError:
        return ""


# The score reason of ``milter.engine.decide.score_text``, said in French for the page.
_AT_LEAST = re.compile(r"score (\S+) ≥ (tag|quarantine|reject) threshold (\S+)")
_BELOW = re.compile(r"score (\S+) below every threshold \((tag|quarantine|reject) (\S+)\)")
_NO_THRESHOLD = re.compile(r"score (\S+) \(no score thresholds set\)")
_LEVEL_FR = {"tag": "d'étiquetage", "quarantine": "de quarantaine", "reject": "de rejet"}


# The shipped rules' descriptions (milter/policy/defaults/rules.yaml) in French, keyed by
# their English text: a rule an admin wrote or reworded keeps the admin's words.
_SHIPPED_RULES_FR = {
    "A check crashed or timed out; let the MTA retry rather than guess.": "une vérification a "
    "échoué ou dépassé son délai : le serveur d'envoi réessaiera plutôt que de deviner",
    "Claims a protected brand and fails to prove it.": "se réclame d'une marque protégée sans "
    "pouvoir le prouver",
    "The brand claim could not be verified because DNS failed; retry later.": "la marque "
    "revendiquée n'a pas pu être vérifiée (échec DNS) ; nouvel essai plus tard",
    "Carries a link to a lookalike of a protected brand's domain.": "contient un lien vers un "
    "sosie du domaine d'une marque protégée",
    "The sender's address names a protected brand at a foreign domain and its links go "
    "elsewhere too.": "l'adresse de l'expéditeur cite une marque protégée sur un domaine "
    "étranger, et ses liens mènent ailleurs",
    "Illegal CPF canvassing (code du travail art. L. 6323-8-1); delivered with its own "
    "banner.": "démarchage CPF illégal (article L. 6323-8-1 du code du travail) ; livré avec "
    "son propre avertissement",
}


def reason_line(reason: Mapping[str, Any], lang: str) -> str:
    """A verdict reason's text in ``lang``: the score reason ("score 6 ≥ tag threshold 5")
    is said in French ("score 6 ≥ seuil d'étiquetage 5"), so are the shipped rules'
    descriptions; a rule's own text written by the admin stays as written."""
    text = str(reason.get("text", ""))
    if lang != "fr":
        return text
    if text in _SHIPPED_RULES_FR:
        return _SHIPPED_RULES_FR[text]
    if reason.get("rule") != "score":
        return text
    if match := _AT_LEAST.fullmatch(text):
        score, level, at = match.groups()
        return f"score {score} ≥ seuil {_LEVEL_FR[level]} {at}"
    if match := _BELOW.fullmatch(text):
        score, level, at = match.groups()
        return f"score {score} sous tous les seuils (seuil {_LEVEL_FR[level]} {at})"
    if match := _NO_THRESHOLD.fullmatch(text):
        return f"score {match.group(1)} (aucun seuil de score défini)"
    return text

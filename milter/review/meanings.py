"""What each finding code means, in the reader's language, for the message page.

English comes from the one vocabulary (``milter.model.codes``); French is written here,
in the review page's words. A code without a French line falls back to English.
"""

from __future__ import annotations

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


def meaning(code: object, lang: str) -> str:
    """One line saying what ``code`` means, in French or English ("" if unknown)."""
    name = str(code)
    if lang == "fr" and name in _FR:
        return _FR[name]
    try:
        return CODES[Code(name)].doc
    except ValueError:
        return ""

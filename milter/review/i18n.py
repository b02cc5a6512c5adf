"""The review page's words in French and English (French first: the users read French)."""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("fr", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # key: (français, English)
    "title": ("Quarantaine Tocsin", "Tocsin quarantine"),
    "login": ("Connexion", "Log in"),
    "logout": ("Déconnexion", "Log out"),
    "user": ("Utilisateur", "User"),
    "password": ("Mot de passe", "Password"),
    "login_failed": ("Identifiant ou mot de passe incorrect.", "Wrong user name or password."),
    "login_blocked": (
        "Trop d'essais : réessayez dans {seconds} secondes.",
        "Too many attempts: try again in {seconds} seconds.",
    ),
    "csrf": (
        "Formulaire expiré ou invalide : rechargez la page et recommencez.",
        "Expired or invalid form: reload the page and try again.",
    ),
    "held": ("retenu", "held"),
    "releasing": ("en cours de libération", "being released"),
    "released": ("libéré", "released"),
    "all": ("tous", "all"),
    "brand": ("Marque", "Brand"),
    "sender": ("Expéditeur", "Sender"),
    "subject": ("Objet", "Subject"),
    "reason": ("Motif", "Reason"),
    "score": ("Score", "Score"),
    "age": ("Âge", "Age"),
    "state": ("État", "State"),
    "verdict": ("Verdict", "Verdict"),
    "recipient": ("Destinataire", "Recipient"),
    "since": ("Depuis le", "Since"),
    "until": ("Jusqu'au", "Until"),
    "search": ("Rechercher dans l'objet", "Search the subject"),
    "filter": ("Filtrer", "Filter"),
    "reset": ("Effacer les filtres", "Clear filters"),
    "count": ("{total} message(s)", "{total} message(s)"),
    "next": ("Plus anciens →", "Older →"),
    "first": ("← Plus récents", "← Newest"),
    "none": ("Aucun message retenu ne correspond.", "No held message matches."),
    "release": ("Libérer", "Release"),
    "release_allow": ("Libérer et autoriser l'expéditeur", "Release and allow sender"),
    "delete": ("Supprimer", "Delete"),
    "selected": ("la sélection", "the selection"),
    "select": ("Sélectionner", "Select"),
    "bulk": ("Pour les messages cochés :", "For the checked messages:"),
    "explanation": ("Pourquoi ce message est retenu", "Why this message is held"),
    "claim": ("Marque revendiquée", "Brand claimed"),
    "no_claim": ("Aucune marque protégée revendiquée.", "No protected brand claimed."),
    "auth": ("Authentification", "Authentication"),
    "auth_none": (
        "Aucun résultat d'authentification enregistré.",
        "No authentication result recorded.",
    ),
    "lookalikes": ("Domaines sosies", "Lookalike domains"),
    "technique": ("technique", "technique"),
    "imitates": ("imite", "imitates"),
    "rules": ("Règles déclenchées", "Rules that fired"),
    "findings": ("Constats", "Findings"),
    "envelope": ("Enveloppe SMTP", "SMTP envelope"),
    "headers": ("En-têtes", "Headers"),
    "text": ("Texte (jamais affiché en HTML)", "Text (never rendered as HTML)"),
    "html_as_text": ("Partie HTML convertie en texte", "HTML part converted to text"),
    "links": ("Liens (désamorcés)", "Links (defanged)"),
    "attachments": ("Pièces jointes (non ouvertes)", "Attachments (not opened)"),
    "history": ("Historique", "History"),
    "back": ("← Retour à la liste", "← Back to the list"),
    "released_ok": (
        "Libéré : le relais a accepté ({reply}).",
        "Released: the relay accepted ({reply}).",
    ),
    "release_failed": (
        "Non libéré, toujours retenu : {error}",
        "Not released, still held: {error}",
    ),
    "released_banner": (
        "Le message garde l'avertissement de Tocsin (usurpation d'identité).",
        "The message keeps Tocsin's warning (impersonation).",
    ),
    "false_positive": (
        "Faux positif : livrer sans l'avertissement",
        "False positive: deliver without the warning",
    ),
    "deleted_ok": ("Supprimé.", "Deleted."),
    "failed": ("Échec : {error}", "Failed: {error}"),
    "allowed_ok": (
        "Expéditeur {sender} ajouté à la liste d'autorisation ({file}) ; rechargez Tocsin "
        "(systemctl reload tocsin) pour l'appliquer.",
        "Sender {sender} added to the allowlist ({file}); reload Tocsin "
        "(systemctl reload tocsin) to apply it.",
    ),
    "confirm_delete": ("Supprimer définitivement ?", "Delete for good?"),
    "not_found": ("Ce message n'est plus en quarantaine.", "This message is no longer held."),
    "bytes": ("octets", "bytes"),
    "received": ("Reçu le", "Received"),
    "audit": ("Journal d'audit", "Audit trail"),
    "language": ("English", "Français"),
    "minutes": ("{n} min", "{n} min"),
    "hours": ("{n} h", "{n} h"),
    "days": ("{n} j", "{n} d"),
    "nothing_selected": ("Aucun message coché.", "No message checked."),
    "disp_quarantine": ("quarantaine", "quarantine"),
    "disp_tag": ("étiquetage", "tag"),
    "disp_reject": ("rejet", "reject"),
    "disp_accept": ("accepté", "accept"),
    "disp_tempfail": ("report temporaire", "tempfail"),
    "sev_critical": ("critique", "critical"),
    "sev_high": ("élevée", "high"),
    "sev_medium": ("moyenne", "medium"),
    "sev_low": ("faible", "low"),
    "sev_info": ("info", "info"),
}

WORDS = frozenset(_TEXT)


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` for ``lang`` (French when unknown)."""
    index = 1 if lang == "en" else 0

    def t(key: str, **values: object) -> str:
        text = _TEXT[key][index]
        return text.format(**values) if values else text

    return t


def pick(accept_language: str, default: str) -> str:
    """``fr`` or ``en`` from an Accept-Language header, else ``default``."""
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGS:
            return code
    return default

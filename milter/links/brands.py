"""Brand data used by the lookalike analysis, and a stand-in brand list.

``DEFAULT_BRANDS`` is a stand-in until the policy files provide the protected brands; it
covers the French public services named in the project brief plus the brands that the
shared phishing corpus impersonates (La Poste group, CAF, ANCV, major banks).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class BrandDomains:
    """A protected brand: its official domains and the words that name it.

    Attributes:
        brand_id: stable identifier (``ameli``, ``impots``...).
        name: human name for evidence strings.
        domains: official registrable domains or hosts; their subdomains are official too.
        tokens: brand words looked for in combosquats (lower-case ASCII, hyphens allowed);
            tokens of 4 characters or fewer only match as whole words (see lookalike docs).
    """

    brand_id: str
    name: str
    domains: tuple[str, ...]
    tokens: tuple[str, ...]


DEFAULT_BRANDS: tuple[BrandDomains, ...] = (
    BrandDomains(
        "ameli",
        "Assurance Maladie (ameli)",
        ("ameli.fr", "assurance-maladie.fr"),
        ("ameli", "assurance-maladie", "assurancemaladie", "cpam"),
    ),
    BrandDomains(
        "cpf",
        "Mon Compte Formation (CPF)",
        ("moncompteformation.gouv.fr",),
        ("moncompteformation", "mon-compte-formation", "compteformation", "cpf"),
    ),
    BrandDomains(
        "caissedesdepots",
        "Caisse des Dépôts",
        ("caissedesdepots.fr",),
        ("caissedesdepots", "caisse-des-depots", "caissedepots"),
    ),
    BrandDomains(
        "franceconnect",
        "FranceConnect",
        ("franceconnect.gouv.fr",),
        ("franceconnect", "france-connect"),
    ),
    BrandDomains(
        "impots",
        "impots.gouv.fr (DGFiP)",
        ("impots.gouv.fr",),
        ("impots", "impot", "dgfip"),
    ),
    BrandDomains("ants", "ANTS", ("ants.gouv.fr",), ("ants",)),
    BrandDomains(
        "service_public",
        "Service-Public.fr",
        ("service-public.fr", "service-public.gouv.fr"),
        ("service-public", "servicepublic"),
    ),
    BrandDomains(
        "cybermalveillance",
        "Cybermalveillance.gouv.fr",
        ("cybermalveillance.gouv.fr",),
        ("cybermalveillance",),
    ),
    BrandDomains("caf", "Caisse d'allocations familiales (CAF)", ("caf.fr",), ("caf",)),
    BrandDomains(
        "maprimerenov",
        "MaPrimeRénov'",
        ("maprimerenov.gouv.fr", "france-renov.gouv.fr"),
        ("maprimerenov", "ma-prime-renov", "primerenov"),
    ),
    BrandDomains("ancv", "ANCV (Chèque-Vacances)", ("ancv.com",), ("ancv",)),
    BrandDomains(
        "gouv",
        "Gouvernement français (gouv.fr)",
        ("gouv.fr", "gouvernement.fr", "gouv.nc"),
        ("gouv",),
    ),
    BrandDomains(
        "laposte",
        "La Poste",
        ("laposte.fr", "laposte.net", "colissimo.fr", "groupelaposte.com"),
        ("laposte", "la-poste", "colissimo"),
    ),
    BrandDomains(
        "labanquepostale",
        "La Banque Postale",
        ("labanquepostale.fr",),
        ("labanquepostale", "banquepostale", "banque-postale"),
    ),
    BrandDomains("chronopost", "Chronopost", ("chronopost.fr",), ("chronopost",)),
    BrandDomains(
        "credit_agricole",
        "Crédit Agricole",
        ("credit-agricole.fr", "credit-agricole.com"),
        ("credit-agricole", "creditagricole"),
    ),
    BrandDomains(
        "societe_generale",
        "Société Générale",
        ("societegenerale.fr", "societegenerale.com"),
        ("societegenerale", "societe-generale"),
    ),
    BrandDomains(
        "banque_populaire",
        "Banque Populaire",
        ("banquepopulaire.fr",),
        ("banquepopulaire", "banque-populaire"),
    ),
)

#: Words that contain a brand token but are ordinary (French) words or legitimate names:
#: a token occurrence inside one of them is not a combosquat. Keys are tokens.
DEFAULT_NEAR_MISSES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "ameli": ("amelie", "amelior", "camelia", "camelli", "pamelia"),
        "impot": ("impotent", "impotence"),
    }
)

#: Words typical of lures, used to split glued labels such as ``actifants`` or
#: ``antsgouv``: a short token glued to other text counts only when the rest of the
#: label is made of these words (``servants`` and ``elephants`` are not).
LURE_WORDS: frozenset[str] = frozenset(
    [
        "acces",
        "access",
        "account",
        "actif",
        "active",
        "activite",
        "activation",
        "agent",
        "aide",
        "alerte",
        "alert",
        "app",
        "appli",
        "assistance",
        "assure",
        "assures",
        "auth",
        "authentification",
        "bleu",
        "carte",
        "centre",
        "client",
        "clients",
        "compte",
        "comptes",
        "connect",
        "connexion",
        "contact",
        "demande",
        "direct",
        "dossier",
        "en",
        "enligne",
        "espace",
        "fr",
        "france",
        "forum",
        "form",
        "formulaire",
        "gerer",
        "gestion",
        "gouv",
        "gouvfr",
        "groupe",
        "id",
        "index",
        "info",
        "infos",
        "la",
        "le",
        "les",
        "ligne",
        "login",
        "ma",
        "mes",
        "menu",
        "mobile",
        "mon",
        "moncompte",
        "my",
        "net",
        "officiel",
        "online",
        "paiement",
        "pay",
        "payment",
        "portail",
        "portal",
        "remboursement",
        "rembourse",
        "securite",
        "secure",
        "service",
        "services",
        "site",
        "solutions",
        "suivi",
        "support",
        "update",
        "verif",
        "verification",
        "web",
        "www",
    ]
)

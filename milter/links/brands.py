"""What the lookalike index needs to know about a brand, and its word lists.

The brands themselves come from the policy (``milter/policy/defaults/brands.yaml`` plus
the admin's files), turned into :class:`BrandDomains` by :mod:`milter.links.registry`.
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

"""What the banner says, in each of the recipient's languages, from the policy's templates.

Each reason is the template of its finding's code (``banners.<lang>.reasons``) filled with
the finding's evidence and its brand's names — "de l'Assurance Maladie" in French, from the
brand's ``fr:`` entry — so the French block is French throughout. A message that names two
brands names both. CPF canvassing without impersonation gets its own texts (it is illegal
solicitation, not a forged sender).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from milter.actions.banner import BannerBlock
from milter.actions.defang import defang_links_text
from milter.actions.targets import LinkTargets
from milter.model.codes import DISGUISED_LINKS, UNPROVEN_BRAND, Code
from milter.model.findings import Finding, Severity
from milter.model.verdict import Verdict
from milter.policy.model import Policy
from milter.policy.schema import BannerTexts, Brand, Lang

MAX_REASONS = 5
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
BRAND_PLACEHOLDERS = ("brand", "brand_le", "brand_de")


def brand_forms(brand: Brand | None) -> dict[str, str]:
    """``{brand}``, ``{brand_le}`` and ``{brand_de}`` of one brand."""
    if brand is None:
        return {"brand": "", "brand_le": "", "brand_de": ""}
    if brand.fr is not None:
        return {"brand": brand.name, "brand_le": brand.fr.le, "brand_de": brand.fr.de}
    de = f"d'{brand.name}" if brand.name[:1].lower() in "aeiouyhéè" else f"de {brand.name}"
    return {"brand": brand.name, "brand_le": brand.name, "brand_de": de}


def several(forms: Sequence[Mapping[str, str]], lang: str) -> dict[str, str]:
    """The forms of several brands joined ("de X et de Y", "X and Y")."""
    joiner = " et " if lang == "fr" else " and "
    return {key: joiner.join(f[key] for f in forms if f[key]) for key in BRAND_PLACEHOLDERS}


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with every known ``{placeholder}`` replaced; unknown ones stay."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


#: Evidence values that are the checks' own words (``LinkFlag`` names of ``LINK_TRICK``),
#: said in each banner language so that no English is left inside the French block.
EVIDENCE_WORDS: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "tricks": {
        "fr": {
            "userinfo": "un faux nom de site placé avant « @ »",
            "bidi-chars": "des caractères qui inversent le sens du texte",
            "data-uri": "une adresse « data: » qui contient la page elle-même",
            "ip-obfuscated": "une adresse IP déguisée",
        },
        "en": {
            "userinfo": 'a fake site name placed before "@"',
            "bidi-chars": "characters that reverse the text direction",
            "data-uri": 'a "data:" address holding the page itself',
            "ip-obfuscated": "a disguised IP address",
        },
    },
}


def localised_evidence(evidence: Mapping[str, str], lang: str) -> dict[str, str]:
    """``evidence`` with the checks' own words (:data:`EVIDENCE_WORDS`) in ``lang``."""
    out = dict(evidence)
    for key, languages in EVIDENCE_WORDS.items():
        words = languages.get(lang)
        if key in out and words:
            out[key] = ", ".join(words.get(w, w) for w in out[key].split(", "))
    return out


def reason_text(finding: Finding, texts: BannerTexts, policy: Policy, lang: str = "en") -> str:
    """One finding as a sentence in ``lang``, the language of ``texts`` (the finding's own
    English text only for a code the policy has no sentence for)."""
    template = texts.reasons.get(finding.code)
    if template is None:
        return finding.text
    brand = policy.brands.get(finding.brand) if finding.brand else None
    return fill(template, {**brand_forms(brand), **localised_evidence(finding.evidence, lang)})


WEAK_CLAIMS = frozenset({Code.SUBJECT_BRAND, Code.BODY_BRAND})


def is_canvassing(verdict: Verdict) -> bool:
    """CPF canvassing and no sign of a forged sender or disguised link (a seller that
    names the CPF in its subject or text is canvassing, not impersonating)."""
    serious = [f for f in verdict.findings if f.severity >= Severity.MEDIUM]
    forged = [f for f in serious if f.code in UNPROVEN_BRAND and f.code not in WEAK_CLAIMS]
    return any(f.code is Code.CPF_CANVASSING for f in serious) and not (
        forged or any(f.code in DISGUISED_LINKS for f in serious)
    )


def brands_named(verdict: Verdict) -> list[str]:
    """The verdict's brand, then every other brand the message names."""
    ids = [verdict.brand] if verdict.brand else []
    ids += [f.brand for f in verdict.findings if f.code is Code.BRAND_CLAIM and f.brand]
    return list(dict.fromkeys(ids))


def banner_blocks(
    verdict: Verdict,
    policy: Policy,
    languages: Sequence[Lang],
    targets: LinkTargets,
) -> list[BannerBlock]:
    """One block per language; hosts named in the reasons are defanged."""
    doc = policy.document
    brand = doc.brands.get(verdict.brand) if verdict.brand else None
    named = [doc.brands[b] for b in brands_named(verdict) if b in doc.brands]
    found = sorted(verdict.findings, key=lambda f: f.severity, reverse=True)
    serious = [f for f in found if f.severity >= Severity.MEDIUM]
    canvassing = is_canvassing(verdict)
    advice = brand.advice.model_dump() if brand and brand.advice else {}
    blocks = []
    for lang in languages:
        texts = doc.banners[lang]
        reasons = list(
            dict.fromkeys(reason_text(f, texts, policy, lang) for f in _one_per_code(serious))
        )
        reasons = [defang_links_text(r, targets) for r in reasons[:MAX_REASONS]]
        if canvassing and texts.canvassing_title and texts.canvassing_intro:
            title, intro = texts.canvassing_title, texts.canvassing_intro
            footer = texts.canvassing_footer or texts.footer
            what, shown_advice = "", ""
        else:
            title = texts.title
            forms = several([brand_forms(b) for b in named], lang)
            intro = fill(texts.intro_brand, forms) if named else texts.intro_generic
            footer, what = texts.footer, texts.what_to_do or ""
            shown_advice = advice.get(lang, "")
        blocks.append(
            BannerBlock(
                lang,
                title,
                intro,
                texts.reasons_heading,
                footer,
                shown_advice,
                tuple(reasons),
                what,
            )
        )
    return blocks


def _one_per_code(found: Sequence[Finding]) -> list[Finding]:
    """The most severe finding of each code first, then the rest (already by severity):
    five reasons say five different things before any repeats."""
    firsts: dict[str, Finding] = {}
    for finding in found:
        firsts.setdefault(finding.code, finding)
    return [*firsts.values(), *(f for f in found if firsts[f.code] is not f)]


def failed_to_prove(verdict: Verdict) -> bool:
    """The message claims a brand and failed to prove it (impersonation findings)."""
    return verdict.brand is not None and any(
        f.code in UNPROVEN_BRAND and f.severity >= Severity.MEDIUM for f in verdict.findings
    )

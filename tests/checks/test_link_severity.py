"""The links check: severity follows the message around the link, evidence keys stay put."""

from __future__ import annotations

import pytest

from milter.checks.base import CheckContext
from milter.checks.claim import find_claim
from milter.checks.links import LinksCheck
from milter.engine import scan
from milter.mime.parse import parse_message
from milter.model.envelope import Envelope
from milter.model.findings import Finding, Severity
from milter.model.verdict import Disposition
from milter.policy.model import Policy

PLAIN_FROM = "From: Jean Dupont <jean@example.org>\r\n"
BULK = "List-Unsubscribe: <mailto:unsub@news.example.org>\r\n"


def message(body: str, *, headers: str = PLAIN_FROM, subject: str = "Bonjour") -> bytes:
    text = f"{headers}Subject: {subject}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}"
    return text.encode("utf-8")


async def findings(raw: bytes, policy: Policy, code: str) -> list[Finding]:
    mime = parse_message(raw)
    ctx = CheckContext(Envelope(), mime, policy, find_claim(mime, policy), None)
    found = await LinksCheck().run(ctx)
    return [f for f in found if isinstance(f, Finding) and f.code == code]


ASCII_ECOLE = "école-en-ligne.example".encode("idna").decode()
LOOKALIKE = '<a href="https://ameli-remboursement.fr/x">ici</a>'


@pytest.mark.parametrize(
    ("headers", "subject", "body", "severity", "context"),
    [
        # a brand claimed (display name) and a lookalike link: the textbook lure
        (
            "From: Assurance Maladie <info@example.org>\r\n",
            "Info",
            "",
            Severity.CRITICAL,
            "brand-claimed",
        ),
        # no claim, but the text names the brand
        (PLAIN_FROM, "Info", "Votre dossier Assurance Maladie ", Severity.HIGH, "brand-named"),
        # a newsletter that names no brand: an odd domain, not an impersonation
        (PLAIN_FROM + BULK, "Nouvelles", "Lettre du mois ", Severity.MEDIUM, "bulk"),
        ("From: x@example.org\r\nPrecedence: bulk\r\n", "News", "", Severity.MEDIUM, "bulk"),
        # a newsletter that does name the brand stays high
        (PLAIN_FROM + BULK, "Nouvelles", "Remboursements ameli ", Severity.HIGH, "brand-named"),
        # personal mail, no brand words: still high (nobody links a lookalike innocently)
        (PLAIN_FROM, "Bonjour", "Regarde ", Severity.HIGH, "plain"),
    ],
)
async def test_lookalike_severity_matrix(
    policy: Policy, *, headers: str, subject: str, body: str, severity: Severity, context: str
) -> None:
    raw = message(body + LOOKALIKE, headers=headers, subject=subject)
    (finding,) = await findings(raw, policy, "LINK_LOOKALIKE")
    assert finding.severity is severity
    assert finding.evidence["context"] == context
    assert finding.brand == "ameli"
    # stable keys read by the link rewriter
    assert {"url", "host", "host_ascii", "imitates", "technique"} <= set(finding.evidence)


MISMATCH = '<a href="https://evil.example/login">https://www.ameli.fr/assure</a>'


@pytest.mark.parametrize(
    ("headers", "severity", "context"),
    [
        (PLAIN_FROM, Severity.HIGH, "plain"),
        (PLAIN_FROM + BULK, Severity.MEDIUM, "bulk"),
        ("From: Ameli <x@example.org>\r\n", Severity.CRITICAL, "brand-claimed"),
        # the brand's own mail (its authenticity is the auth check's job) links through
        # click trackers all the time: recorded, not scored
        ("From: Assurance Maladie <info@mail.ameli.fr>\r\n", Severity.INFO, "brand-own-mail"),
        # another brand's own mail showing an ameli address that goes elsewhere
        ("From: CAF <info@caf.fr>\r\n", Severity.CRITICAL, "brand-claimed"),
    ],
)
async def test_text_mismatch_severity_matrix(
    policy: Policy, headers: str, severity: Severity, context: str
) -> None:
    (finding,) = await findings(message(MISMATCH, headers=headers), policy, "LINK_TEXT_MISMATCH")
    assert finding.severity is severity
    assert finding.evidence["context"] == context
    assert finding.evidence["shown"] == "www.ameli.fr"
    assert finding.evidence["real_host"] == "evil.example"
    assert finding.evidence["href"] == "https://evil.example/login"


async def test_text_showing_a_non_brand_domain_is_not_a_mismatch_finding(policy: Policy) -> None:
    raw = message('<a href="https://evil.example/">https://www.example.com/</a>')
    assert await findings(raw, policy, "LINK_TEXT_MISMATCH") == []


@pytest.mark.parametrize(
    "href", ["https://xn--meli-43d.fr/connexion", "https://аmeli.fr/connexion"]
)
async def test_idn_lookalike_evidence_shows_unicode_and_punycode(policy: Policy, href: str) -> None:
    (finding,) = await findings(message(f'<a href="{href}">ici</a>'), policy, "LINK_LOOKALIKE")
    assert finding.evidence["host"] == "аmeli.fr"
    assert finding.evidence["host_ascii"] == "xn--meli-43d.fr"
    assert "аmeli.fr (xn--meli-43d.fr)" in finding.text
    assert finding.evidence["technique"] == "homoglyph"


async def test_idn_mismatch_evidence_shows_both_forms(policy: Policy) -> None:
    raw = message('<a href="https://école-en-ligne.example/">www.ameli.fr</a>')
    (finding,) = await findings(raw, policy, "LINK_TEXT_MISMATCH")
    assert finding.evidence["real_host"] == "école-en-ligne.example"
    assert finding.evidence["real_host_ascii"] == ASCII_ECOLE
    assert f"école-en-ligne.example ({ASCII_ECOLE})" in finding.text


async def test_from_lookalike_evidence_shows_both_forms(policy: Policy) -> None:
    raw = message("Bonjour", headers="From: Service <info@xn--meli-43d.fr>\r\n")
    (finding,) = await findings(raw, policy, "FROM_LOOKALIKE")
    assert finding.severity is Severity.CRITICAL
    assert (finding.evidence["host"], finding.evidence["host_ascii"]) == (
        "аmeli.fr",
        "xn--meli-43d.fr",
    )


async def test_bulk_lookalike_alone_is_tagged_not_quarantined(policy: Policy) -> None:
    raw = message("Lettre du mois " + LOOKALIKE, headers=PLAIN_FROM + BULK, subject="Nouvelles")
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.disposition is Disposition.TAG, result.verdict.findings


async def test_claimed_brand_with_lookalike_is_quarantined(policy: Policy) -> None:
    raw = message(LOOKALIKE, headers="From: Assurance Maladie <info@example.org>\r\n")
    result = await scan(raw, Envelope(), policy)
    assert result.verdict.disposition is Disposition.QUARANTINE

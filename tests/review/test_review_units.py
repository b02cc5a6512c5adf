"""The review page's pure parts: password hashes, the login limiter, the explanation,
the allowlist entry, the translations."""

from __future__ import annotations

from datetime import UTC, datetime

from milter.model.envelope import Envelope
from milter.quarantine.record import QuarantineRecord
from milter.review import i18n
from milter.review.allow import allow_entry
from milter.review.explain import explain
from milter.review.passwords import hash_password, is_hash, verify_password
from milter.review.sessions import LoginLimiter, SessionStore
from tests.conftest import EXAMPLES
from tests.review.conftest import LURE_ENV, lure_verdict


def test_password_hashes_are_salted_scrypt_and_verify() -> None:
    first, second = hash_password("mot de passe"), hash_password("mot de passe")
    assert first != second  # salted
    assert is_hash(first)
    assert first.startswith("scrypt$15$8$1$")
    assert verify_password("mot de passe", first)
    assert not verify_password("mot de passe ", first)
    assert not verify_password("mot de passe", "plain-text")
    assert not verify_password("x", "scrypt$40$8$1$AAAA$AAAA")  # absurd cost refused


def test_the_login_limiter_blocks_after_five_failures_per_key() -> None:
    limiter = LoginLimiter(attempts=5, window=300)
    for _ in range(4):
        limiter.failed("ip:192.0.2.1", "user:alice")
    assert limiter.blocked("ip:192.0.2.1") == 0
    limiter.failed("ip:192.0.2.1", "user:alice")
    assert limiter.blocked("ip:192.0.2.1") > 0
    assert limiter.blocked("ip:192.0.2.9", "user:alice") > 0  # the user is protected too
    assert limiter.blocked("ip:192.0.2.9", "user:bob") == 0


def test_sessions_expire_and_end_on_logout() -> None:
    store = SessionStore(lifetime=-1)
    sid, _ = store.create("alice")
    assert store.get(sid) is None
    live = SessionStore(lifetime=60)
    sid, session = live.create("alice")
    assert live.get(sid) is session
    assert len(session.csrf) > 20
    assert session.csrf != sid
    live.drop(sid)
    assert live.get(sid) is None
    assert live.get("forged") is None


def test_the_explanation_of_the_cpf_lure() -> None:
    why = explain(lure_verdict((EXAMPLES / "cpf-lure.eml").read_bytes()))
    assert why.brand == "cpf"
    assert why.claim is not None
    assert "Mon Compte Formation" in why.claim
    first = why.lookalikes[0]
    assert (first.unicode, first.imitates, first.technique) == (
        "moncompteformation-gouv.fr",
        "moncompteformation.gouv.fr",
        "tld-glued",
    )
    assert why.rules[0]["rule"] == "brand-impersonation"
    assert "BRAND_CLAIM" not in [f["code"] for f in why.findings]  # shown once, above


def test_the_explanation_survives_odd_verdicts() -> None:
    why = explain({"findings": "nope", "reasons": [1, None], "score": "x", "auth": {}})
    assert (why.brand, why.claim, why.lookalikes, why.rules, why.score) == (None, None, (), (), 0.0)


def test_an_idn_lookalike_shows_both_forms() -> None:
    finding = {
        "code": "LINK_LOOKALIKE",
        "text": "t",
        "evidence": {
            "host": "amélі.fr",
            "host_ascii": "xn--aml-bma.fr",
            "imitates": "ameli.fr",
            "technique": "homoglyph",
        },
    }
    (look,) = explain({"findings": [finding]}).lookalikes
    assert (look.unicode, look.punycode) == ("amélі.fr", "xn--aml-bma.fr")


def test_the_allow_entry_is_as_narrow_as_the_message() -> None:
    record = QuarantineRecord(
        id="20261201T000000000000Z-000000000000",
        received_at=datetime.now(UTC),
        envelope=Envelope(mail_from="bounce@Mailer.School.Example", rcpts=LURE_ENV.rcpts),
        verdict={"findings": [{"code": "URGENCY"}, {"code": "DISPLAY_NAME_BRAND"}]},
        size=1,
        sha256="0" * 64,
        header_from="Mon Compte Formation <s1@school.example>",
    )
    entry = allow_entry(record, "alice", datetime(2026, 12, 1, tzinfo=UTC))
    assert entry["from_domain"] == "school.example"
    assert entry["mail_from_domain"] == "mailer.school.example"
    assert entry["codes"] == ["DISPLAY_NAME_BRAND", "URGENCY"]
    assert "alice" in entry["reason"]


def test_every_text_exists_in_french_and_english() -> None:
    fr, en = i18n.translator("fr"), i18n.translator("en")
    assert fr("release") == "Libérer"
    assert en("release") == "Release"
    assert i18n.pick("en-GB,en;q=0.9", "fr") == "en"
    assert i18n.pick("de-DE", "fr") == "fr"


def test_every_finding_code_has_a_french_and_a_plain_english_meaning() -> None:
    from milter.model.codes import CODES
    from milter.review.meanings import meaning

    for code, info in CODES.items():
        french, english = meaning(code, "fr"), meaning(code, "en")
        assert french, code
        assert english, code
        assert french != info.doc, f"{code} has no French meaning"
        assert len(english) < 100, f"{code}: a reader's line, not the admin doc"
        assert "`" not in english + french, code  # no policy markup for readers
        assert "](" not in english + french, code
    assert meaning("NOT_A_CODE", "fr") == ""


def test_crlf_line_ends_are_line_ends_but_a_lone_cr_stays_visible() -> None:
    from milter.review.inspect import clean

    assert clean("Bonjour,\r\nligne deux\r\n", multiline=True) == "Bonjour,\nligne deux\n"
    assert "\\x0d" in clean("a\rb", multiline=True)
    assert "\\x0d" in clean("a\r\nb")  # a single-line field never gains a line


def test_the_score_reason_is_said_in_french_on_the_page() -> None:
    from milter.engine.decide import score_text
    from milter.policy.schema import Scoring
    from milter.review.meanings import reason_line

    scoring = Scoring.model_validate({"thresholds": {"tag": 5, "quarantine": 10, "reject": None}})

    def fr(score: float) -> str:
        return reason_line({"rule": "score", "text": score_text(score, scoring)}, "fr")

    assert fr(6) == "score 6 ≥ seuil d'étiquetage 5"
    assert fr(12.5) == "score 12.5 ≥ seuil de quarantaine 10"
    assert fr(2) == "score 2 sous tous les seuils (seuil d'étiquetage 5)"
    english = {"rule": "score", "text": score_text(6, scoring)}
    assert reason_line(english, "en") == "score 6 ≥ tag threshold 5"
    rule = {"rule": "brand-impersonation", "text": "Impersonation of a protected brand"}
    assert reason_line(rule, "fr") == rule["text"]  # the admin's own words stay


def test_every_shipped_rule_is_explained_in_french() -> None:
    from milter.policy.loader import load_policy
    from milter.review.meanings import reason_line

    for rule in load_policy(None).document.rules:
        text = rule.description or rule.name
        french = reason_line({"rule": rule.name, "text": text}, "fr")
        assert french != text, f"shipped rule {rule.name} has no French description"
        assert reason_line({"rule": rule.name, "text": text}, "en") == text
    mine = {"rule": "maison", "text": "Règle écrite par l'admin"}
    assert reason_line(mine, "fr") == mine["text"]

"""The review page in a real headless Chromium: log in, read, release, delete, CSRF,
logged-out redirect, a hostile message that must stay inert. Screenshots land in
docs/img/review-*.png (looked at by a person; see docs/review.md)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import pytest

from milter.actions.banner import HTML_START
from tests.review.conftest import (
    LURE_ENV,
    PASSWORD,
    SCREENSHOTS,
    ReviewSite,
    SinkHandler,
    login,
)

pytestmark = pytest.mark.system

HOSTILE_SUBJECT = "Facture \u202egpj.exe\u202c urgente"
HOSTILE = (
    "From: =?utf-8?q?Assurance_Maladie?= <remboursement@ameli-securite.example>\r\n"
    "To: salarie@example.fr\r\n"
    f"Subject: =?utf-8?b?{__import__('base64').b64encode(HOSTILE_SUBJECT.encode()).decode()}?=\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b"\r\n'
    "\r\n"
    "--b\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><head><style>body{background:url(http://198.51.100.1/bg.png)}</style>"
    '<link rel="stylesheet" href="http://198.51.100.1/evil.css"></head><body>'
    "<script>window.__pwned = 1; fetch('http://198.51.100.1/x');</script>"
    '<img src="http://198.51.100.1/pixel.gif" onerror="window.__pwned = 2">'
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:#fff;'
    'z-index:9999">Votre session a expiré, <a href="https://ameli-securite.example/login">'
    "reconnectez-vous</a></div>"
    '<iframe src="http://198.51.100.1/frame"></iframe>'
    "<p>Remboursement de 142,50 € en attente.</p></body></html>\r\n"
    "--b\r\n"
    'Content-Type: application/octet-stream; name="releve.pdf.exe"\r\n'
    'Content-Disposition: attachment; filename="releve.pdf.exe"\r\n'
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA\r\n"
    "--b--\r\n"
).encode()
HOSTILE_VERDICT = {
    "verdict": "quarantine",
    "brand": "ameli",
    "score": 21.0,
    "reasons": [
        {
            "rule": "brand-impersonation",
            "disposition": "quarantine",
            "text": "<script>window.__pwned=3</script>",
            "codes": ["DISPLAY_NAME_BRAND"],
        }
    ],
    "findings": [
        {
            "code": "DISPLAY_NAME_BRAND",
            "check": "sender",
            "severity": "high",
            "brand": "ameli",
            "text": '<img src=x onerror="window.__pwned=4">',
            "evidence": {},
        }
    ],
    "auth": [],
}


def _screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_logged_out_visitors_are_sent_to_the_login_page(
    browser: Any, site: ReviewSite, lure: str
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        for path in ("/", f"/m/{lure}", "/audit"):
            page.goto(site.url + path)
            assert urlparse(page.url).path == "/login"
        assert page.locator("input[name=password]").count() == 1
        _screenshot(page, "review-login.png")
    finally:
        context.close()


def test_log_in_see_the_cpf_lure_with_its_reasons_and_release_it(
    browser: Any, site: ReviewSite, lure: str, sink: tuple[SinkHandler, int]
) -> None:
    handler, _port = sink
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        login(page, site.url)
        assert urlparse(page.url).path == "/"
        row = page.locator("table.items tbody tr").first
        assert row.locator("td.brand").inner_text() == "cpf"
        assert "Mon Compte Formation" in row.locator("td.sender").inner_text()
        assert "vos droits CPF expirent" in row.locator("td.subject").inner_text()
        assert "brand-impersonation" in row.locator("td.reason").inner_text()
        _screenshot(page, "review-list-fr.png")

        row.locator("td.subject a").click()
        page.wait_for_load_state()
        why = page.locator("section.why")
        assert "Pourquoi ce message est retenu" in why.inner_text()
        assert "moncompteformation-gouv.fr" in why.locator("ul.lookalikes").inner_text()
        assert "tld-glued" in why.inner_text()
        assert "brand-impersonation" in why.locator("ul.rules").inner_text()
        assert "hxxps://" in page.locator("ul.links").inner_text()  # defanged, not a link
        assert page.locator("ul.links a").count() == 0
        _screenshot(page, "review-message-fr.png")

        page.click("form.actions button[formaction$='/release']")
        page.wait_for_load_state()
        assert "Libéré" in page.locator("p.flash.ok").inner_text()
        assert "250 2.0.0" in page.locator("p.flash.ok").inner_text()
        # held for impersonation: released with the banner (no "faux positif" ticked)
        assert "garde l'avertissement" in page.locator("p.flash.ok").inner_text()
        assert len(handler.received) == 1
        got = handler.received[0]
        assert got.rcpts == list(LURE_ENV.rcpts)
        assert got.content.startswith(b"X-Tocsin-Released: " + lure.encode())
        assert re.search(rb"X-Tocsin-Release-Token: " + lure.encode() + rb"; exp=", got.content)
        assert HTML_START.encode() in got.content
        assert site.store.get(lure).status == "released"
        trail = site.store.audit_trail(lure)
        assert (trail[0].actor, trail[0].action, trail[0].result) == ("alice", "release", "ok")
    finally:
        context.close()


def test_a_4xx_from_the_relay_shows_and_keeps_it_held(
    browser: Any, site: ReviewSite, lure: str, sink: tuple[SinkHandler, int]
) -> None:
    handler, _port = sink
    handler.data_replies.append("451 4.3.0 try again later")
    context = browser.new_context()
    try:
        page = context.new_page()
        login(page, site.url)
        page.goto(f"{site.url}/m/{lure}")
        page.click("form.actions button[formaction$='/release']")
        page.wait_for_load_state()
        assert "451 4.3.0" in page.locator("p.flash.error").inner_text()
        assert site.store.get(lure).status == "held"
        assert handler.received == []
    finally:
        context.close()


def test_delete_and_bulk_release_and_allow(
    browser: Any, site: ReviewSite, sink: tuple[SinkHandler, int]
) -> None:
    handler, _port = sink
    from tests.conftest import EXAMPLES
    from tests.review.conftest import lure_verdict

    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    ids = [site.store.put(raw, LURE_ENV, lure_verdict(raw)) for _ in range(3)]
    context = browser.new_context(locale="en-GB")
    try:
        page = context.new_page()
        login(page, site.url)
        page.goto(f"{site.url}/m/{ids[0]}")
        page.click("form.actions button[formaction$='/delete']")
        page.wait_for_load_state()
        assert urlparse(page.url).path == "/"
        assert "Deleted" in page.locator("p.flash.ok").inner_text()
        assert page.locator(f"input[value='{ids[0]}']").count() == 0
        assert ids[0] not in site.store.ids()

        for qid in ids[1:]:
            page.check(f"input[name=ids][value='{qid}']")
        _screenshot(page, "review-list-en.png")
        page.click("p.bulk button[value='release-allow']")
        page.wait_for_load_state()
        assert page.locator("p.flash.ok").count() == 2
        assert len(handler.received) == 2
        assert all(site.store.get(q).status == "released" for q in ids[1:])
        allow = site.allowlist.read_text()
        assert "from_domain: school.example" in allow
        assert allow.count("reason:") == 1  # the same sender is added once
    finally:
        context.close()


def test_forms_without_the_csrf_token_are_refused(
    browser: Any, site: ReviewSite, lure: str, sink: tuple[SinkHandler, int]
) -> None:
    handler, _port = sink
    context = browser.new_context()
    try:
        page = context.new_page()
        login(page, site.url)
        for path in (f"/m/{lure}/release", f"/m/{lure}/delete", "/bulk", "/logout"):
            response = page.request.post(site.url + path, form={"ids": lure, "action": "delete"})
            assert response.status == 403, path
        wrong = page.request.post(f"{site.url}/m/{lure}/delete", form={"csrf": "forged"})
        assert wrong.status == 403
        assert page.request.get(f"{site.url}/m/{lure}/delete").status == 405  # GET changes nothing
        assert site.store.get(lure).status == "held"
        assert handler.received == []
        # the login form too: a cross-site login attempt carries no token
        fresh = browser.new_context()
        try:
            refused = fresh.request.post(
                f"{site.url}/login", form={"user": "alice", "password": PASSWORD}
            )
            assert refused.status == 403
        finally:
            fresh.close()
    finally:
        context.close()


def test_the_session_cookie_is_httponly_and_samesite(browser: Any, site: ReviewSite) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        login(page, site.url)
        cookie = next(c for c in context.cookies() if c["name"] == "tocsin_session")
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # not readable by any script
    finally:
        context.close()


def test_a_hostile_message_runs_nothing_and_fetches_nothing(browser: Any, site: ReviewSite) -> None:
    qid = site.store.put(HOSTILE, LURE_ENV, HOSTILE_VERDICT)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    dialogs: list[str] = []
    try:
        page = context.new_page()
        login(page, site.url)
        context.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{site.url}/")
        page.goto(f"{site.url}/m/{qid}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert dialogs == []
        foreign = [u for u in requests if urlparse(u).netloc != urlparse(site.url).netloc]
        assert foreign == []
        assert page.locator("script, iframe, img, link[rel=stylesheet][href^=http]").count() == 0
        subject = page.locator("h1.subject").inner_text()
        assert "\\u202e" in subject  # the bidi override is shown, not obeyed
        assert "\u202e" not in page.content()
        assert "<script>window.__pwned=3</script>" in page.locator("ul.rules").inner_text()
        attachments = page.locator("table.parts").inner_text()
        assert "releve.pdf.exe" in attachments
        assert "sha256:" in attachments
        # the CSS overlay is text in a box, not an overlay: the actions are still clickable
        assert page.locator("form.actions button").first.is_visible()
        page.locator("form.actions button").first.click(trial=True)
        _screenshot(page, "review-hostile.png")
    finally:
        context.close()


def test_the_page_fits_a_phone(browser: Any, site: ReviewSite, lure: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="fr-FR"
    )
    try:
        page = context.new_page()
        login(page, site.url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # no sideways scrolling
        assert page.locator("table.items thead").is_hidden()  # rows become cards
        _screenshot(page, "review-phone.png")
        page.goto(f"{site.url}/m/{lure}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        _screenshot(page, "review-phone-message.png")
    finally:
        context.close()


def test_logins_are_rate_limited_and_audited(browser: Any, site: ReviewSite) -> None:
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        for _ in range(5):
            login(page, site.url, password="wrong")
            assert "incorrect" in page.locator("p.flash.error").inner_text()
        login(page, site.url)  # the right password, but too late
        assert "Trop d'essais" in page.locator("p.flash.error").inner_text()
        assert urlparse(page.url).path == "/login"
        results = [e.result for e in site.store.audit_trail() if e.action == "login"]
        assert results == ["blocked"] + ["failed"] * 5
    finally:
        context.close()


def test_filters_and_paging_walk_every_item_once(browser: Any, site: ReviewSite) -> None:
    from datetime import UTC, datetime, timedelta

    from milter.model.envelope import Envelope

    start = datetime.now(UTC) - timedelta(hours=5)
    made = []
    for n in range(120):
        brand = "ameli" if n % 3 == 0 else "cpf"
        raw = f"From: Service <s{n}@lure.example>\r\nSubject: dossier {n}\r\n\r\nx\r\n".encode()
        env = Envelope(mail_from=f"b{n}@lure.example", rcpts=(f"u{n % 4}@ville.fr",))
        verdict = {"verdict": "quarantine", "brand": brand, "score": 9.0}
        made.append(site.store.put(raw, env, verdict, received_at=start + timedelta(minutes=n)))
    context = browser.new_context(locale="en-GB")
    try:
        page = context.new_page()
        login(page, site.url)
        seen: list[str] = []
        while True:
            seen += page.locator("input[name=ids]").evaluate_all("els => els.map(e => e.value)")
            older = page.locator("a[rel=next]")
            if older.count() == 0:
                break
            older.click()
            page.wait_for_load_state()
        assert seen == sorted(made, reverse=True)
        assert "120 message(s)" in page.locator("h1").inner_text()

        page.goto(f"{site.url}/?state=held&brand=ameli&rcpt=u0%40ville.fr")
        rows = page.locator("input[name=ids]").evaluate_all("els => els.map(e => e.value)")
        assert rows == [q for n, q in enumerate(made) if n % 3 == 0 and n % 4 == 0][::-1]
    finally:
        context.close()

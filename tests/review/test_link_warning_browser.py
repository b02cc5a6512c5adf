"""Redirect mode end to end in a real headless Chromium: a held lure released from the
review page keeps its banner and its links point at the warning page; the page shows the
real destination and the reason, fetches nothing and only leaves on a deliberate click;
unsigned, tampered and expired links lead nowhere. A false positive is released as held."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from milter.actions.banner import HTML_START
from milter.actions.redirect import LinkToken, RedirectSigner, redirect_url
from tests.conftest import EXAMPLES
from tests.review.conftest import (
    LURE_ENV,
    SCREENSHOTS,
    ReviewSite,
    SinkHandler,
    login,
    lure_verdict,
    review_site,
)

pytestmark = pytest.mark.system
BASE = "https://tocsin.example.fr/link"
LURE_URL_HOST = "moncompteformation-gouv.fr"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    secret = tmp_path / "secret" / "redirect.key"
    secret.parent.mkdir()
    secret.write_bytes(os.urandom(32).hex().encode() + b"\n")
    secret.chmod(0o600)
    return secret


@pytest.fixture
def link_site(
    tmp_path: Path, sink: tuple[SinkHandler, int], key_file: Path
) -> Iterator[ReviewSite]:
    """The review page with a policy in redirect mode (its links lead to ``BASE``)."""
    policies = tmp_path / "policy"
    policies.mkdir()
    (policies / "actions.yaml").write_text(
        "actions:\n  link_rewrite: redirect\n"
        f"  redirect_url: {BASE}\n  redirect_secret_file: {key_file}\n"
        "  redirect_lifetime_days: 7\n"
    )
    with review_site(tmp_path, sink[1], policies) as running:
        yield running


def _screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def _html_part(raw: bytes) -> str:
    message: Message = message_from_bytes(raw, policy=default)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return str(part.get_content())  # type: ignore[attr-defined]
    raise AssertionError("no HTML part")


def _release_from_page(page: Any, site: ReviewSite, qid: str, false_positive: bool) -> None:
    login(page, site.url)
    page.goto(f"{site.url}/m/{qid}")
    if false_positive:
        page.check("form.actions input[name=false_positive]")
    page.click("form.actions button[formaction$='/release']")
    page.wait_for_load_state()


def _local(link: str, site: ReviewSite) -> str:
    """The warning-page link as the test server serves it (same path and query)."""
    assert link.startswith(BASE + "?")
    return site.url + "/link?" + link.split("?", 1)[1]


class Outside:
    """Records every request the page makes off loopback and answers it locally."""

    def __init__(self, context: Any) -> None:
        self.requests: list[str] = []
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), self._handle)

    def _handle(self, route: Any) -> None:
        self.requests.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p id=arrived>arrived</p>")


def test_released_lure_links_lead_to_a_warning_page_that_only_continues_on_a_click(
    browser: Any, link_site: ReviewSite, sink: tuple[SinkHandler, int]
) -> None:
    handler, _port = sink
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    qid = link_site.store.put(raw, LURE_ENV, lure_verdict(raw))
    context = browser.new_context(locale="fr-FR", viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        _release_from_page(page, link_site, qid, false_positive=False)
        flash = page.locator("p.flash.ok").inner_text()
        assert "garde l'avertissement" in flash
        html = _html_part(handler.received[0].content)
        assert HTML_START in html  # the banner is on the released copy
        links = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)]
        warned = [h for h in links if h.startswith(BASE + "?")]
        assert warned, links
        assert not any(LURE_URL_HOST in h for h in links)  # no live link to the lure left
        query = parse_qs(urlsplit(warned[0]).query)
        assert query["e"][0].isdigit()
        expires = datetime.fromtimestamp(int(query["e"][0]), UTC)
        assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)
    finally:
        context.close()

    # a recipient, not logged in, clicks the link in the delivered message
    context = browser.new_context(locale="fr-FR", viewport={"width": 1100, "height": 900})
    try:
        outside = Outside(context)
        page = context.new_page()
        response = page.goto(_local(warned[0], link_site))
        assert response.status == 200
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp  # no script at all (default-src 'none')
        assert urlsplit(page.url).path == "/link"  # no redirect, no login page
        text = page.locator("main").inner_text()
        assert "Attention : ce lien mène peut-être à une arnaque" in text
        assert "Warning: this link may lead to a scam" in text
        assert page.locator("#host").inner_text() == "moncompteformation-gouv[.]fr"
        assert page.locator("#url").inner_text().startswith("hxxps://")
        reasons = page.locator("section.reasons").inner_text()
        assert "sosie du domaine d'une marque" in reasons  # LINK_LOOKALIKE, in French
        assert "LINK_LOOKALIKE" in reasons
        assert "salarie@example.fr" in page.locator("p.meta").inner_text()
        go = page.locator("a#continue")
        original = go.get_attribute("href")
        assert original is not None
        first_hop = urlsplit(original).hostname
        if first_hop != LURE_URL_HOST:  # the lure's link goes through a redirector first
            assert page.locator("#via").inner_text().startswith(first_hop.replace(".", "[.]"))
        assert go.get_attribute("rel") == "noopener noreferrer nofollow"
        assert page.locator("a").count() == 1  # the continue link is the only way out
        assert outside.requests == []  # showing the page fetched nothing elsewhere
        _screenshot(page, "link-warning-fr.png")

        go.click()
        page.wait_for_selector("#arrived")
        assert outside.requests == [original]
        assert page.url == original
    finally:
        context.close()


def test_unsigned_tampered_and_expired_links_lead_nowhere(
    browser: Any, link_site: ReviewSite, key_file: Path
) -> None:
    key = key_file.read_bytes().strip()
    lure = "https://ameli-remboursement.fr/connexion"
    good = RedirectSigner.for_message(BASE, key, ["salarie@example.fr"])(lure)
    old = RedirectSigner.for_message(
        BASE,
        key,
        ["salarie@example.fr"],
        lifetime=timedelta(days=1),
        now=datetime.now(UTC) - timedelta(days=2),
    )(lure)
    query = good.split("?", 1)[1]
    tampered_target = redirect_url(LinkToken("https://evil.example/", 2**40, (), ()), BASE, key)
    forged = re.sub(r"u=[^&]+", "u=" + parse_qs(urlsplit(tampered_target).query)["u"][0], query)
    later = re.sub(r"e=[0-9]+", "e=99999999999", query)
    context = browser.new_context(locale="fr-FR")
    try:
        outside = Outside(context)
        page = context.new_page()
        for path in (
            "/link",
            "/link?u=aHR0cHM6Ly9ldmlsLmV4YW1wbGUv",  # unsigned open-redirect attempt
            "/link?" + forged,  # another destination under the old signature
            "/link?" + later,  # a later expiry
            "/link?" + query.replace("s=", "s=0"),
        ):
            response = page.goto(link_site.url + path)
            assert response.status == 400, path
            assert "Lien invalide" in page.locator("h1").inner_text()
            assert page.locator("a").count() == 0
            assert "evil" not in page.content()
            assert "ameli-remboursement" not in page.content()
        _screenshot(page, "link-warning-invalid.png")

        response = page.goto(_local(old, link_site))
        assert response.status == 410
        assert "Lien expiré" in page.locator("h1").inner_text()
        assert page.locator("#host").inner_text() == "ameli-remboursement[.]fr"  # for information
        assert page.locator("a").count() == 0
        assert outside.requests == []
    finally:
        context.close()


def test_an_idn_destination_shows_both_host_forms(
    browser: Any, link_site: ReviewSite, key_file: Path
) -> None:
    key = key_file.read_bytes().strip()
    lure = "https://\u0430meli.fr/compte"  # Cyrillic a
    link = RedirectSigner.for_message(BASE, key, ["salarie@example.fr"])(lure)
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        assert page.goto(_local(link, link_site)).status == 200
        assert page.locator("#host").inner_text() == "\u0430meli[.]fr"
        assert page.locator("#host-ascii").inner_text().startswith("xn--")
        assert "caractères non latins" in page.locator("section.dest").inner_text()
    finally:
        context.close()


def test_the_warning_page_fits_a_phone(browser: Any, link_site: ReviewSite, key_file: Path) -> None:
    key = key_file.read_bytes().strip()
    long_url = "https://ameli-remboursement.fr/" + "x" * 300 + "?next=https://evil.example/"
    link = RedirectSigner.for_message(BASE, key, ["salarie@example.fr"])(long_url)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="fr-FR"
    )
    try:
        page = context.new_page()
        assert page.goto(_local(link, link_site)).status == 200
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        assert "https://evil" not in page.locator("#url").inner_text()  # nested URL defanged
        assert page.locator("a#continue").is_visible()
        _screenshot(page, "link-warning-phone.png")
    finally:
        context.close()


def test_a_false_positive_is_released_as_it_was_held(
    browser: Any, link_site: ReviewSite, sink: tuple[SinkHandler, int]
) -> None:
    handler, _port = sink
    raw = (EXAMPLES / "cpf-lure.eml").read_bytes()
    qid = link_site.store.put(raw, LURE_ENV, lure_verdict(raw))
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        _release_from_page(page, link_site, qid, false_positive=True)
        flash = page.locator("p.flash.ok").inner_text()
        assert "Libéré" in flash
        assert "avertissement" not in flash
        delivered = handler.received[0].content.replace(b"\r\n", b"\n")
        assert delivered.endswith(raw.replace(b"\r\n", b"\n"))  # SMTP made the line ends CRLF
        assert link_site.store.get(qid).status == "released"
    finally:
        context.close()

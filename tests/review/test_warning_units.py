"""What the link warning page offers for a verified link: only http(s) links to a host get
a "continue" link; the destination is shown defanged, behind any redirector."""

from __future__ import annotations

import pytest

from milter.actions.redirect import LinkToken
from milter.review.warning import destination


def dest_of(url: str) -> tuple[str, str, tuple[str, ...], str]:
    shown = destination(LinkToken(url, 2_000_000_000, ("a@b.example",), ("LINK_TRICK",)))
    return shown.host, shown.follow, shown.via, shown.url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "java\tscript:alert(1)",  # browsers drop the tab: still javascript:
        " JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "mailto:x@evil.example",
        "https://",  # no host
        "https://ex%2Fample.com/",  # a browser refuses this host
        "/relative/path",
    ],
)
def test_no_continue_link_but_for_http_links_to_a_host(url: str) -> None:
    assert dest_of(url)[1] == ""


def test_the_host_a_browser_would_contact_is_shown_and_followed() -> None:
    host, follow, via, shown = dest_of("https://ameli.fr\\@evil.example/login")
    assert host == "ameli[.]fr"  # WHATWG: the backslash ends the authority
    assert follow == "https://ameli.fr\\@evil.example/login"
    assert via == ()
    assert shown.startswith("hxxps://ameli[.]fr")


def test_a_redirector_is_named_and_the_final_host_shown() -> None:
    url = "https://www.google.com/url?q=https://ameli-remboursement.fr/connexion"
    host, follow, via, shown = dest_of(url)
    assert host == "ameli-remboursement[.]fr"
    assert via == ("www[.]google[.]com",)
    assert follow == url
    assert "ameli-remboursement[.]fr" in shown

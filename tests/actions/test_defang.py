"""Link defanging and signed redirects."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from milter.actions.defang import (
    defang_links_html,
    defang_links_text,
    defang_url,
    host_of,
    redirect_url,
    verify_redirect,
)

HOSTS = {"ameli-remboursement.fr"}


def test_defang_url() -> None:
    url = "https://ameli-remboursement.fr/login?x=a.b"
    assert defang_url(url) == "hxxps://ameli-remboursement[.]fr/login?x=a.b"
    assert defang_url("http://u.v@www.evil.fr:8080/") == "hxxp://u.v@www[.]evil[.]fr:8080/"
    assert host_of("https://user@Ameli-Remboursement.FR.:443/p") == "ameli-remboursement.fr"


def test_html_only_matching_links_change() -> None:
    head = '<html><body style="x">\n<p>Voir <a href="https://www.ameli.fr/">ameli.fr</a></p>\n'
    bad = "<a class=\"btn\" HREF='https://ameli-remboursement.fr/r?a=1&amp;b=2'>Cliquez</a>"
    tail = "\n<!-- <a href=https://ameli-remboursement.fr/> -->\n</body></html>"
    out = defang_links_html(head + bad + tail, HOSTS)
    assert out.startswith(head)
    assert out.endswith(tail)
    assert out[len(head) : len(out) - len(tail)] == (
        '<a class="btn" title="hxxps://ameli-remboursement[.]fr/r?a=1&amp;b=2">Cliquez</a>'
    )
    unrelated = head + "<p>https://www.ameli.fr/x</p>" + tail
    assert defang_links_html(unrelated, HOSTS) == unrelated


def test_html_visible_url_and_existing_title() -> None:
    doc = '<a title="t" href="http://ameli-remboursement.fr">http://ameli-remboursement.fr</a>'
    out = defang_links_html(doc, HOSTS)
    assert out == (
        '<a title="t" data-tocsin-defanged="hxxp://ameli-remboursement[.]fr">'
        "hxxp://ameli-remboursement[.]fr</a>"
    )
    assert defang_links_html(out, HOSTS) == out


def test_plain_text() -> None:
    text = "Allez sur https://ameli-remboursement.fr/x. Ou ameli-remboursement.fr, pas www.ameli.fr"
    out = defang_links_text(text, HOSTS)
    assert out == (
        "Allez sur hxxps://ameli-remboursement[.]fr/x. Ou ameli-remboursement[.]fr, "
        "pas www.ameli.fr"
    )
    assert defang_links_text("sub.ameli-remboursement.fr.evil", HOSTS) == (
        "sub.ameli-remboursement.fr.evil"
    )


def test_redirect_round_trip_and_tamper() -> None:
    key = b"k" * 32
    original = "https://ameli-remboursement.fr/é?a=1&b=2"
    link = redirect_url(original, "https://tocsin.example/r", key)
    query = parse_qs(urlsplit(link).query)
    u, s = query["u"][0], query["s"][0]
    assert len(s) == 32
    assert "=" not in u
    assert verify_redirect(u, s, key) == original
    assert verify_redirect(u, s, b"other") is None
    assert verify_redirect(u[:-2] + "AA", s, key) is None
    assert verify_redirect(u, "0" * 32, key) is None
    assert verify_redirect(u, "é" * 32, key) is None
    assert redirect_url(original, "https://t.example/r?x=1", key).startswith(
        "https://t.example/r?x=1&u="
    )

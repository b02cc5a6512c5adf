"""Link extraction from text and HTML parts."""

from __future__ import annotations

import pytest

from milter.links import Link, LinkFlag, LinkSet, extract_links


def _one(text: str = "", html: str = "") -> Link:
    links = extract_links([text] if text else [], [html] if html else [])
    assert len(links) == 1, links
    return links.links[0]


def _urls(links: LinkSet) -> list[str]:
    return [link.url for link in links]


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("Cliquez sur https://ameli.fr/compte.", "https://ameli.fr/compte"),
        ("(voir http://exemple.fr/a_(b))", "http://exemple.fr/a_(b)"),
        ("lien:https://x.example/p?q=1&r=2!", "https://x.example/p?q=1&r=2"),
        ("« www.ameli-remboursement.fr/login »", "www.ameli-remboursement.fr/login"),
        ("Rendez-vous sur impots-gouv.fr, vite", "impots-gouv.fr"),
        ("<https://bracketed.example/x>", "https://bracketed.example/x"),
    ],
)
def test_text_urls_trimmed(text: str, url: str) -> None:
    assert _one(text=text).url == url


def test_text_without_scheme_gets_http_target() -> None:
    link = _one(text="Connectez-vous : www.ameli-remboursement.fr")
    assert link.target == "http://www.ameli-remboursement.fr"
    assert link.host == "www.ameli-remboursement.fr"
    assert LinkFlag.NO_SCHEME in link.flags
    assert link.registrable == "ameli-remboursement.fr"


def test_text_ignores_words_files_and_emails() -> None:
    links = extract_links(["Bonjour. Voir setup.py et contact@ameli.fr ou 3.14 etc."], [])
    assert _urls(links) == []


def test_userinfo_trick() -> None:
    link = _one(text="https://ameli.fr@evil.example/login")
    assert link.host == "evil.example"
    assert link.userinfo == "ameli.fr"
    assert LinkFlag.USERINFO in link.flags


@pytest.mark.parametrize(
    ("url", "host", "obfuscated"),
    [
        ("http://192.168.1.1/x", "192.168.1.1", False),
        ("http://3232235777/x", "192.168.1.1", True),
        ("http://0xC0A80101/x", "192.168.1.1", True),
        ("http://0300.0250.1.1/x", "192.168.1.1", True),
        ("http://[2001:db8::1]/x", "2001:db8::1", False),
    ],
)
def test_ip_hosts(url: str, host: str, obfuscated: bool) -> None:
    link = _one(text=url)
    assert link.host == host
    assert LinkFlag.IP_HOST in link.flags
    assert (LinkFlag.IP_OBFUSCATED in link.flags) is obfuscated
    assert link.registrable == ""


def test_punycode_host_both_forms() -> None:
    link = _one(text="https://xn--amli-bpa.fr/x")
    assert link.host == "a\u00e9mli.fr"
    assert link.host_ascii == "xn--amli-bpa.fr"
    assert LinkFlag.PUNYCODE in link.flags
    assert LinkFlag.IDN not in link.flags


def test_unicode_host_gets_ascii_form() -> None:
    link = _one(html='<a href="https://аmeli.fr/">ameli</a>')  # Cyrillic а
    assert link.host == "аmeli.fr"
    assert link.host_ascii.startswith("xn--")
    assert LinkFlag.IDN in link.flags
    assert LinkFlag.PUNYCODE not in link.flags


def test_zero_width_and_bidi_chars() -> None:
    link = _one(text="https://ame\u200bli.fr/\u202eexe.pdf")
    assert link.host == "ameli.fr"
    assert {LinkFlag.INVISIBLE, LinkFlag.BIDI} <= link.flags
    assert "\u200b" in link.url
    assert "\u200b" not in link.target


def test_html_href_anchor_entities_and_mismatch() -> None:
    link = _one(
        html='<p><a href="https://evil.example/?a=1&amp;b=2">https://www.<b>ameli</b>.fr</a>'
    )
    assert link.url == "https://evil.example/?a=1&b=2"
    assert link.source == "html-href"
    assert link.anchor == "https://www.ameli.fr"
    assert link.anchor_host == "www.ameli.fr"
    assert LinkFlag.ANCHOR_MISMATCH in link.flags


def test_html_same_domain_anchor_is_not_mismatch() -> None:
    link = _one(html='<a href="https://www.ameli.fr/x">ameli.fr</a>')
    assert LinkFlag.ANCHOR_MISMATCH not in link.flags


def test_html_base_form_src_refresh() -> None:
    html = (
        '<html><head><base href="https://base.example/dir/">'
        '<meta http-equiv="Refresh" content="0; URL=https://refresh.example/">'
        '</head><body><a href="page.html">x</a><img src="/logo.png">'
        '<form action="https://post.example/login"><button formaction="steal">go</button></form>'
        "<script>var a='https://hidden.example/'</script>"
        "</body></html>"
    )
    links = {link.source + " " + link.target for link in extract_links([], [html])}
    assert links == {
        "html-base https://base.example/dir/",
        "html-meta-refresh https://refresh.example/",
        "html-href https://base.example/dir/page.html",
        "html-src https://base.example/logo.png",
        "html-form https://post.example/login",
        "html-form https://base.example/dir/steal",
    }


def test_html_visible_text_urls_and_special_schemes() -> None:
    html = (
        "<p>Copiez www.visible.fr dans votre navigateur</p>"
        '<a href="javascript:alert(1)">a</a><a href="data:text/html;base64,PGI+">b</a>'
        '<a href="mailto:support@ameli-aide.fr">c</a><a href="relative/only">d</a>'
    )
    by_url = {link.url: link for link in extract_links([], [html])}
    assert by_url["www.visible.fr"].source == "html-text"
    assert LinkFlag.JAVASCRIPT in by_url["javascript:alert(1)"].flags
    assert LinkFlag.DATA_URI in by_url["data:text/html;base64,PGI+"].flags
    assert by_url["mailto:support@ameli-aide.fr"].host == "ameli-aide.fr"
    assert LinkFlag.RELATIVE in by_url["relative/only"].flags
    assert by_url["relative/only"].host == ""


def test_outlook_conditional_comment_and_vml_href() -> None:
    html = (
        '<!--[if mso]><v:roundrect href="https://ameli-remboursement.fr/vml">'
        "<center>Se connecter</center></v:roundrect><![endif]-->"
        "<!-- a plain comment <a href='https://ignored.example/'>x</a> -->"
        '<a href="https://ok.example/">ok</a>'
    )
    urls = _urls(extract_links([], [html]))
    assert urls == ["https://ameli-remboursement.fr/vml", "https://ok.example/"]


def test_dedupe_by_url_across_parts() -> None:
    links = extract_links(
        ["https://a.example/x https://a.example/x"], ['<a href="https://a.example/x">t</a>']
    )
    assert _urls(links) == ["https://a.example/x"]


def test_malformed_html_does_not_raise() -> None:
    html = '<a href="https://ok.example/"><<<!-- <a href=">x</a><img src=x onerror=1 <b'
    links = extract_links([], [html])
    assert "https://ok.example/" in _urls(links)


def test_100k_distinct_links_bounded() -> None:
    text = " ".join(f"https://host{i}.example/p" for i in range(100_000))
    html = "".join(f'<a href="https://h{i}.example/">l{i}</a>' for i in range(100_000))
    links = extract_links([text], [html], max_links=2000)
    assert links.truncated
    assert len(links) == 2000


def test_100k_duplicate_links_not_truncated() -> None:
    html = '<a href="https://same.example/">x</a>' * 100_000
    links = extract_links([], [html])
    assert not links.truncated
    assert _urls(links) == ["https://same.example/"]


@pytest.mark.timeout(120)  # a hang fence, not a speed claim: quadratic work never ends here
def test_pathological_text_is_linear() -> None:
    text = "a" * 500_000 + ". " + "x." * 200_000 + " " + "h" * 100_000 + "://"
    links = extract_links([text], ["<" + text])
    assert not links.truncated

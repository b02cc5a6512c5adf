"""Link defanging and signed redirects: only the named links change, nothing else."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.actions.defang import (
    LinkRewrite,
    _bare_host_pattern,
    _defang_bare_hosts,
    defang_links_html,
    defang_links_text,
)
from milter.actions.redirect import RedirectSigner, verify_link
from milter.actions.targets import LinkTargets
from milter.text.url import bracket_dots, defang_url, host_of

HOSTS = LinkTargets.of(hosts=["ameli-remboursement.fr"])
KEY = b"k" * 32
BASE = "https://tocsin.example/r"


def label(host: str) -> str:
    style = "color:#b00020;font-weight:bold;"
    return f'<span data-tocsin-host style="{style}">&#9888; {host} &#8250; </span>'


def redirecting(targets: LinkTargets) -> LinkRewrite:
    signer = RedirectSigner.for_message(BASE, KEY, ["alice@ville.example"])
    return LinkRewrite(targets.keeping(BASE), signer)


def test_defang_url() -> None:
    url = "https://ameli-remboursement.fr/login?x=a.b"
    assert defang_url(url) == "hxxps://ameli-remboursement[.]fr/login?x=a.b"
    assert defang_url("http://u.v@www.evil.fr:8080/") == "hxxp://u.v@www[.]evil[.]fr:8080/"
    assert defang_url(defang_url(url)) == defang_url(url)
    assert host_of("https://user@Ameli-Remboursement.FR.:443/p") == "ameli-remboursement.fr"


def test_html_only_matching_links_change() -> None:
    head = '<html><body style="x">\n<p>Voir <a href="https://www.ameli.fr/">ameli.fr</a></p>\n'
    bad = "<a class=\"btn\" HREF='https://ameli-remboursement.fr/r?a=1&amp;b=2'>Cliquez</a>"
    tail = "\n<!-- <a href=https://ameli-remboursement.fr/> -->\n</body></html>"
    out = defang_links_html(head + bad + tail, HOSTS)
    assert out.startswith(head)
    assert out.endswith(tail)  # an ordinary comment is not rendered: left alone
    assert out[len(head) : len(out) - len(tail)] == (
        '<a class="btn" title="hxxps://ameli-remboursement[.]fr/r?a=1&amp;b=2">'
        + label("ameli-remboursement[.]fr")
        + "Cliquez</a>"
    )
    unrelated = head + "<p>https://www.ameli.fr/x</p>" + tail
    assert defang_links_html(unrelated, HOSTS) == unrelated


def test_html_visible_url_and_existing_title() -> None:
    doc = '<a title="t" href="http://ameli-remboursement.fr">http://ameli-remboursement.fr</a>'
    out = defang_links_html(doc, HOSTS)
    assert out == (
        '<a title="t" data-tocsin-defanged="hxxp://ameli-remboursement[.]fr">'
        + label("ameli-remboursement[.]fr")
        + "hxxp://ameli-remboursement[.]fr</a>"
    )
    assert defang_links_html(out, HOSTS) == out


def test_plain_text() -> None:
    text = "Allez sur https://ameli-remboursement.fr/x. Ou ameli-remboursement.fr, pas www.ameli.fr"
    out = defang_links_text(text, HOSTS)
    assert out == (
        "Allez sur hxxps://ameli-remboursement[.]fr/x. Ou ameli-remboursement[.]fr, "
        "pas www.ameli.fr"
    )
    assert defang_links_text(out, HOSTS) == out
    assert defang_links_text("sub.ameli-remboursement.fr.evil", HOSTS) == (
        "sub.ameli-remboursement.fr.evil"
    )


REDIRECTOR = "https://www.bing.com/ck/a?!&&p=3f1e&u=a1aHR0cHM6Ly9ldmlsLmV4YW1wbGU&ntb=1"


def test_a_redirector_link_is_matched_by_its_url_not_its_host() -> None:
    targets = LinkTargets.of(hosts=["evil.example"], urls=[REDIRECTOR])
    bad = f'<a href="{REDIRECTOR.replace("&", "&amp;")}">moncompteformation.gouv.fr</a>'
    good = '<a href="https://www.bing.com/search?q=cpf">Bing</a>'
    out = defang_links_html(f"<p>{bad}</p><p>{good}</p>", targets)
    assert out.endswith(f"<p>{good}</p>")  # the same redirector host elsewhere stays
    assert "href=" not in out.split("<p>")[1]
    assert 'title="hxxps://www[.]bing[.]com/ck/a?!&amp;&amp;p=3f1e' in out
    text = f"Lien : {REDIRECTOR}. Recherche : https://www.bing.com/search?q=cpf"
    assert defang_links_text(text, targets) == (
        f"Lien : {defang_url(REDIRECTOR)}. Recherche : https://www.bing.com/search?q=cpf"
    )


def test_evidence_cut_at_300_characters_matches_as_a_prefix() -> None:
    long_url = "https://t.example/c?" + "x" * 400
    targets = LinkTargets.of(urls=[long_url[:300]])
    assert targets.url_matches(long_url)
    assert not targets.url_matches("https://t.example/c?y")
    short = LinkTargets.of(urls=["https://t.example/c?x"])
    assert short.url_matches("https://t.example/c?x")
    assert not short.url_matches("https://t.example/c?xy")


def test_idn_host_matches_its_punycode() -> None:
    targets = LinkTargets.of(hosts=["améli.fr".encode("idna").decode("ascii")])
    assert targets.url_matches("https://AMÉLI.fr/")
    assert not targets.url_matches("https://ameli.fr/")


def test_outlook_vml_area_and_form_are_neutralised_too() -> None:
    doc = (
        '<!--[if mso]><v:roundrect href="https://ameli-remboursement.fr/go" arcsize="10%">'
        "<center>Go</center></v:roundrect><![endif]-->"
        '<map><area shape="rect" href="https://ameli-remboursement.fr/a" alt="a"></map>'
        '<form method="post" action="https://ameli-remboursement.fr/post">'
        '<button formaction="https://ameli-remboursement.fr/b">OK</button></form>'
        '<link rel="stylesheet" href="https://ameli-remboursement.fr/s.css">'
    )
    out = defang_links_html(doc, HOSTS)
    assert "https://ameli-remboursement.fr/go" not in out
    assert out.startswith('<!--[if mso]><v:roundrect title="hxxps://ameli-remboursement[.]fr/go"')
    assert out.count("<![endif]-->") == 1
    assert 'action="' not in out.replace("formaction", "")
    assert 'formaction="' not in out
    assert '<link rel="stylesheet" href="https://ameli-remboursement.fr/s.css">' in out
    assert defang_links_html(out, HOSTS) == out


def test_every_other_byte_of_the_html_stays() -> None:
    doc = (
        "<!DOCTYPE html>\n<html><head><style>a{color:red}</style></head>\n"
        "<BODY bgcolor=#fff>\n<table><tr><td>Bonjour &eacute; \u20ac</td></tr></table>\n"
        "<a href='https://www.ameli.fr/'>officiel</a>\n"
        '<a  data-x="1"\n   href="https://ameli-remboursement.fr/a?b=1&amp;c=2" >ici</a>\n'
        "<img src=https://ameli-remboursement.fr/pixel.gif>\n"
        "<p>Copiez https://ameli-remboursement.fr/a dans votre navigateur.</p></BODY></html>"
    )
    out = defang_links_html(doc, HOSTS)
    bad = 'href="https://ameli-remboursement.fr/a?b=1&amp;c=2" >'
    expected = doc.replace(
        bad,
        'title="hxxps://ameli-remboursement[.]fr/a?b=1&amp;c=2" >'
        + label("ameli-remboursement[.]fr"),
    ).replace(
        "Copiez https://ameli-remboursement.fr/a", "Copiez hxxps://ameli-remboursement[.]fr/a"
    )
    assert out == expected  # the <img> (not a link), entities, case, spacing: all kept
    assert defang_links_html(out, HOSTS) == out


def test_redirect_mode_signs_the_original_and_keeps_the_host_visible() -> None:
    original = "https://ameli-remboursement.fr/r?a=1&b=2"
    doc = f'<p><a href="{original.replace("&", "&amp;")}">Cliquez</a> ou {original}</p>'
    out = defang_links_html(doc, redirecting(HOSTS))
    href = re.search(r'href="([^"]+)"', out)
    assert href is not None
    link = href.group(1).replace("&amp;", "&")
    assert link.startswith(BASE + "?u=")
    query = parse_qs(urlsplit(link).query)
    token = verify_link({k: v[0] for k, v in query.items()}, [KEY])
    assert token.url == original
    assert token.recipients == ("alice@ville.example",)
    assert 'title="hxxps://ameli-remboursement[.]fr/r?a=1&amp;b=2"' in out
    assert "ou hxxps://ameli-remboursement[.]fr/r?a=1&b=2</p>" in out  # text: defanged
    # the warning-page link carries the original (base64) but is never wrapped again
    assert defang_links_html(out, redirecting(LinkTargets.of(urls=[link]))) == out


_BROWSER_LINKS = [
    '<a class="x"href="https://evil.fr/p">go</a>',
    "<a/href=https://evil.fr/p>go</a>",
    '<svg><a xlink:href="https://evil.fr/p"><text>go</text></a></svg>',
    '<!-- c --!><a href="https://evil.fr/p">go</a>',
    '<![if !mso]><a href="https://evil.fr/p">go</a><![endif]>',
    '<!--[if mso]><a href="https://evil.fr/p">go</a><![endif]-->',
    '<a href="https:\\\\evil.fr\\p">go</a>',
    '<a href="https://evil.fr\\@ameli.fr/">go</a>',
]


def test_the_rewriter_neutralises_every_link_the_detector_sees() -> None:
    """#17: whatever markup trick hides a link, detector and rewriter read it the same."""
    from milter.links import extract_links

    targets = LinkTargets.of(["evil.fr"])
    for doc in _BROWSER_LINKS:
        assert [link.host for link in extract_links([], [doc])] == ["evil.fr"], doc
        out = defang_links_html(doc, targets)
        assert out != doc, doc
        assert extract_links([], [out]).hosts() <= {""} | set(), (doc, out)
        assert "evil[.]fr" in out, out


_HOSTS = frozenset({"ameli-remboursement.fr", "cpf.example", "xn--amli-bpa.fr"})


@settings(max_examples=500)
@given(
    st.lists(
        st.sampled_from(
            [
                "ameli-remboursement.fr",
                "AMELI-Remboursement.FR",
                "cpf.example",
                "CPF.EXAMPLE",
                "xn--amli-bpa.fr",
                "a.cpf.example",
                "cpf.examples",
                " ",
                ".",
                "-",
                "@",
                "/",
                "voir ",
                "ameli-rembour\u017fement.fr",  # long s: re.I reads it as "s"
                "amel\u0130-remboursement.fr",  # dotted capital I: re.I reads it as "i"
                "é",
                "İ",
                "\u212a",
                "https://",
                "hxxps://",
                "mot",
            ]
        ),
        max_size=12,
    ).map("".join)
)
def test_bare_hosts_are_defanged_as_the_plain_pattern_does(text: str) -> None:
    """The quick "no target host in this text" exit never skips a text the pattern edits
    (upper case, non-ASCII text, hosts inside longer names)."""
    pattern = _bare_host_pattern(_HOSTS)
    assert pattern is not None
    expected = pattern.sub(lambda m: bracket_dots(m.group(0)), text)
    assert _defang_bare_hosts(text, _HOSTS) == expected

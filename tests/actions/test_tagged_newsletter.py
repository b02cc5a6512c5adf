"""The body of a tagged newsletter, byte for byte: what a tagged message that failed to
prove its brand gets (every link defanged, the banner on top of each alternative).

The expected body is written out here by hand from the rules (the href becomes a title
holding the defanged URL, a visible label names the real host, URLs written as text are
defanged, images, comments, raw text and titles stay), not computed by the code under
test. The newsletter repeats its tracking link, as real ones do, and has the head, style,
comments and Outlook block of a real one.
"""

from __future__ import annotations

from milter.actions.banner import Banner
from milter.actions.compose import edit_body
from milter.actions.defang import LinkRewrite
from milter.actions.targets import LinkTargets

TRACK = "https://click.lettre.example/l/9f3a?u=soldes&amp;utm_source=lettre"
HTML = (
    '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>La lettre</title>'
    "<style>td{color:#222}</style></head>\n"
    '<body style="margin:0"><table width="600"><tr><td style="padding:12px">'
    '<img src="https://img.lettre.example/a.jpg" alt="">\n'
    f'<h2>Soldes d\u2019hiver</h2><p>Jusqu\u2019\u00e0 -50 % <a href="{TRACK}" '
    'style="color:#0b5fa5">Voir</a></p>\n'
    "<!-- tracker: https://px.lettre.example/o.gif -->\n"
    '<!--[if mso]><v:roundrect href="https://click.lettre.example/l/mso">'
    "</v:roundrect><![endif]-->\n"
    f'<p><a href="{TRACK}"><img src="https://img.lettre.example/b.jpg" alt="Soldes"></a></p>\n'
    "<p>Ou : https://www.lettre.example/soldes</p>\n"
    "</td></tr></table></body></html>\n"
)
PLAIN = (
    "Soldes d\u2019hiver : jusqu\u2019\u00e0 -50 %\n"
    "Voir : https://click.lettre.example/l/9f3a?u=soldes&utm_source=lettre\n"
    "Se d\u00e9sabonner : https://www.lettre.example/desinscription\n"
)


def _message(plain: str, html: str) -> bytes:
    return (
        "From: La Lettre <lettre@lettre.example>\r\nTo: a@ville.example\r\n"
        "Subject: Soldes\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        + plain.replace("\n", "\r\n")
        + "--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + html.replace("\n", "\r\n") + "--b1--\r\n"
    ).encode()


BANNER = Banner(
    "[Tocsin] ----------------------------------------------\n"
    "Prudence\n"
    "---------------------------------------------- [/Tocsin]\n\n",
    "<!-- tocsin-banner:start --><p>Prudence</p><!-- tocsin-banner:end -->",
)

STYLE = "color:#b00020;font-weight:bold;"
CLICK_LABEL = (
    f'<span data-tocsin-host style="{STYLE}">&#9888; click[.]lettre[.]example &#8250; </span>'
)
DEFANGED_TRACK = "hxxps://click[.]lettre[.]example/l/9f3a?u=soldes&amp;utm_source=lettre"
EXPECTED_HTML = (
    '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>La lettre</title>'
    "<style>td{color:#222}</style></head>\n"
    '<body style="margin:0">'
    "<!-- tocsin-banner:start --><p>Prudence</p><!-- tocsin-banner:end -->"
    '<table width="600"><tr><td style="padding:12px">'
    '<img src="https://img.lettre.example/a.jpg" alt="">\n'
    "<h2>Soldes d\u2019hiver</h2><p>Jusqu\u2019\u00e0 -50 % "
    f'<a title="{DEFANGED_TRACK}" style="color:#0b5fa5">{CLICK_LABEL}Voir</a></p>\n'
    "<!-- tracker: https://px.lettre.example/o.gif -->\n"
    '<!--[if mso]><v:roundrect title="hxxps://click[.]lettre[.]example/l/mso">'
    "</v:roundrect><![endif]-->\n"
    f'<p><a title="{DEFANGED_TRACK}">{CLICK_LABEL}'
    '<img src="https://img.lettre.example/b.jpg" alt="Soldes"></a></p>\n'
    "<p>Ou : hxxps://www[.]lettre[.]example/soldes</p>\n"
    "</td></tr></table></body></html>\n"
)
EXPECTED_PLAIN = (
    "[Tocsin] ----------------------------------------------\n"
    "Prudence\n"
    "---------------------------------------------- [/Tocsin]\n\n"
    "Soldes d\u2019hiver : jusqu\u2019\u00e0 -50 %\n"
    "Voir : hxxps://click[.]lettre[.]example/l/9f3a?u=soldes&utm_source=lettre\n"
    "Se d\u00e9sabonner : hxxps://www[.]lettre[.]example/desinscription\n"
)


def test_tagged_newsletter_body_is_the_stated_one() -> None:
    raw = _message(PLAIN, HTML)
    every = LinkRewrite(LinkTargets().with_every_link())
    body = edit_body(raw, banner=BANNER, links=every)
    expected = _message(EXPECTED_PLAIN, EXPECTED_HTML)
    assert body == expected[expected.index(b"\r\n\r\n") + 4 :]
    # applying the same edits to the result changes nothing more (idempotent)
    assert edit_body(expected, banner=BANNER, links=every) is None

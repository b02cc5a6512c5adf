"""Cases the rewriter's speed work must keep, each written out by hand from the rules
(not copied from the code's output):

- a bare target host in the text is defanged (``evil[.]example``) in every casing and in a
  non-ASCII document; the same host inside an attribute value is left alone (only text and
  link attributes are rewritten). The quick reading, which does not read text without
  ``://``, must not be used when a target host occurs in the document (``_hosts_absent``).
- the end tag of a raw-text or RCDATA element (style, script, textarea, title) ends that
  element whatever it carries: its attributes are neither text nor a link, and stay as
  they are; the text after it is text again (the quick reading stops at the start of that
  end tag, ``_next_stop``).
- a message's LinkMemo keeps at most ``MEMO_LIMIT`` entries a table, and a part with more
  distinct links still has every one rewritten.
- links without a host (``#a``, ``/rel1``) each get a label showing their own URL, also
  when several sit in one message (the memo keeps labels by host, never under "").
- a memo is used only with the rewrite it was made for.
"""

from __future__ import annotations

import pytest

from milter.actions.compose import edit_body
from milter.actions.defang import (
    MEMO_LIMIT,
    LinkMemo,
    LinkRewrite,
    defang_links_html,
    defang_links_text,
)
from milter.actions.redirect import RedirectSigner
from milter.actions.targets import LinkTargets

_HOST = LinkTargets.of(hosts=["evil.example"])

_BARE_HOSTS = [
    ("<p>visit evil.example now</p>", "<p>visit evil[.]example now</p>"),
    ("<p>VISIT EVIL.EXAMPLE</p>", "<p>VISIT EVIL[.]EXAMPLE</p>"),
    ("<p>Evil.Example, then evil.example.</p>", "<p>Evil[.]Example, then evil[.]example.</p>"),
    (
        '<p title="evil.example"><img alt="evil.example">evil.example</p>',
        '<p title="evil.example"><img alt="evil.example">evil[.]example</p>',
    ),
    ('<p title="evil.example">nothing here</p>', '<p title="evil.example">nothing here</p>'),
    ("<p>été à evil.example</p>", "<p>été à evil[.]example</p>"),
    ("<p>Réglez sur EVIL.EXAMPLE</p>", "<p>Réglez sur EVIL[.]EXAMPLE</p>"),
    ("<b>a</b><i>b</i>evil.example<br>", "<b>a</b><i>b</i>evil[.]example<br>"),
    # not the host itself: a longer name, or a sub-domain-like prefix, stays
    ("<p>notevil.example evil.examples</p>", "<p>notevil.example evil.examples</p>"),
]


@pytest.mark.parametrize(("doc", "expected"), _BARE_HOSTS)
def test_bare_target_host_in_the_document_is_defanged(doc: str, expected: str) -> None:
    assert defang_links_html(doc, _HOST) == expected
    assert defang_links_html(doc, LinkRewrite(_HOST.with_every_link())) == expected


def test_bare_target_host_in_plain_text() -> None:
    text = "Voir evil.example ou EVIL.EXAMPLE (été)"
    assert defang_links_text(text, _HOST) == "Voir evil[.]example ou EVIL[.]EXAMPLE (été)"


_EVERY = LinkTargets().with_every_link()

_RAW_TEXT_END_TAGS = [
    # (document, expected with every link rewritten)
    (
        '<style>p{}</style title="http://evil.example/">x</p>',
        '<style>p{}</style title="http://evil.example/">x</p>',
    ),
    (
        '<STYLE>p{}</Style title="http://evil.example/">voir http://evil.example/a</p>',
        '<STYLE>p{}</Style title="http://evil.example/">voir hxxp://evil[.]example/a</p>',
    ),
    (
        "<textarea>t</textarea title=https://e.fr/>x https://e.fr/b",
        "<textarea>t</textarea title=https://e.fr/>x hxxps://e[.]fr/b",
    ),
    (
        "<Textarea></Textarea x=https://e.fr/>",
        "<Textarea></Textarea x=https://e.fr/>",
    ),
    (
        "<title>T</title data='http://evil.example/'><p>y</p>",
        "<title>T</title data='http://evil.example/'><p>y</p>",
    ),
    (
        '<script>var a=1;</script src="https://e.fr/s.js"> https://e.fr/c',
        '<script>var a=1;</script src="https://e.fr/s.js"> hxxps://e[.]fr/c',
    ),
    (
        "<script></script\nhref=https://e.fr/>",
        "<script></script\nhref=https://e.fr/>",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), _RAW_TEXT_END_TAGS)
def test_end_tag_after_raw_text_keeps_its_attributes(doc: str, expected: str) -> None:
    assert defang_links_html(doc, _EVERY) == expected


def _memo_sizes(memo: LinkMemo) -> list[int]:
    return [len(memo._matches), len(memo._defanged), len(memo._shown), len(memo._redirects)]


def test_link_memo_stays_bounded_and_every_link_is_rewritten() -> None:
    count = 2 * MEMO_LIMIT + 50
    urls = [f"https://t{i}.example/c/{i:05d}?u=x" for i in range(count)]
    doc = "".join(f'<a href="{url}">l</a>\n' for url in urls)
    signer = RedirectSigner.for_message("https://tocsin.example/r", b"k" * 32, ["a@b.example"])
    rewrite = LinkRewrite(_EVERY.keeping("https://tocsin.example/r"), signer)
    memo = LinkMemo(rewrite)
    out = defang_links_html(doc, rewrite, memo)
    assert max(_memo_sizes(memo)) == MEMO_LIMIT
    assert len(memo._labels) == MEMO_LIMIT  # (one host a link here)
    lines = out.split("\n")[:-1]
    assert len(lines) == count
    for i, (url, line) in enumerate(zip(urls, lines, strict=True)):
        defanged = f"hxxps://t{i}[.]example/c/{i:05d}?u=x"
        assert line == (
            f'<a href="{signer(url).replace("&", "&amp;")}" title="{defanged}">'
            f'<span data-tocsin-host style="color:#b00020;font-weight:bold;">'
            f"&#9888; t{i}[.]example &#8250; </span>l</a>"
        ), i
    # the text alternative, after the HTML part, with the same (full) memo
    text = " ".join(urls)
    expected = " ".join(f"hxxps://t{i}[.]example/c/{i:05d}?u=x" for i in range(count))
    assert defang_links_text(text, rewrite.targets, memo=memo) == expected
    assert max(_memo_sizes(memo)) == MEMO_LIMIT


def _label(shown: str) -> str:
    return (
        '<span data-tocsin-host style="color:#b00020;font-weight:bold;">'
        f"&#9888; {shown} &#8250; </span>"
    )


def test_each_link_without_a_host_gets_its_own_label() -> None:
    raw = (
        b"From: a@b.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<a href=#a>1</a><a href=/rel1>2</a>\r\n"
        b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<a href="#b">3</a> <a href=/rel2>4</a>\r\n'
        b"--b1--\r\n"
    )
    expected = (
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f'<a title="#a">{_label("#a")}1</a><a title="/rel1">{_label("/rel1")}2</a>\r\n'
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f'<a title="#b">{_label("#b")}3</a> <a title="/rel2">{_label("/rel2")}4</a>\r\n'
        "--b1--\r\n"
    ).encode()
    assert edit_body(raw, links=LinkRewrite(_EVERY)) == expected
    doc = "<a href=#a>1</a><a href=#b>2</a>"
    assert defang_links_html(doc, _EVERY) == (
        f'<a title="#a">{_label("#a")}1</a><a title="#b">{_label("#b")}2</a>'
    )


def test_a_memo_is_used_only_with_its_own_rewrite() -> None:
    rewrite = LinkRewrite(_EVERY)
    memo = LinkMemo(rewrite)
    doc = "<a href=https://e.fr/>x</a> https://e.fr/y"
    assert defang_links_html(doc, rewrite, memo) == defang_links_html(doc, rewrite)
    assert defang_links_html(doc, LinkRewrite(_EVERY), memo) == defang_links_html(doc, rewrite)
    assert defang_links_text(doc, _EVERY, memo=memo) == defang_links_text(doc, _EVERY)
    with pytest.raises(ValueError, match="memo"):
        defang_links_html(doc, _HOST, memo)
    with pytest.raises(ValueError, match="memo"):
        defang_links_html(doc, LinkRewrite(_EVERY, str.upper), memo)
    with pytest.raises(ValueError, match="memo"):
        defang_links_text(doc, _HOST, memo=memo)

"""The warning banner: plain and HTML renderings, idempotent insertion into the body.

Our banner sits between stable markers (HTML comments, plain marker lines). Insertion
first removes every earlier copy of *our* block (a re-scan, a second hop, a quoted
reply, or a fake block planted by the sender to suppress ours), then puts one fresh
banner at the top: applying it twice gives the same bytes, and banners never stack.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from milter.policy.schema import BannerTexts

HTML_START = "<!-- tocsin-banner:start -->"
HTML_END = "<!-- tocsin-banner:end -->"
PLAIN_START = "[Tocsin] ----------------------------------------------"
PLAIN_END = "---------------------------------------------- [/Tocsin]"

# (BannerTexts, language code) pairs, in display order.
LangTexts = Sequence[tuple[BannerTexts, str]]


@dataclass(frozen=True, slots=True)
class BannerBlock:
    """One language's block of the banner, every text already in that language."""

    lang: str
    title: str
    intro: str
    reasons_heading: str
    footer: str
    advice: str = ""
    reasons: tuple[str, ...] = ()
    what_to_do: str = ""


_HTML_BLOCK = re.compile(re.escape(HTML_START) + r".*?" + re.escape(HTML_END), re.S)
_PLAIN_BLOCK = re.compile(
    r"^[> \t]*\[Tocsin\] -{10,}[ \t]*\r?\n.*?^[> \t]*-{10,} \[/Tocsin\][ \t]*(?:\r?\n)?"
    r"(?:[> \t]*\r?\n)?",
    re.S | re.M,
)
_PLAIN_LEAD = "[Tocsin] -"  # what every _PLAIN_BLOCK match holds
_PLAIN_MARK = re.compile(r"\[Tocsin\] -{10,}|-{10,} \[/Tocsin\]")
_BODY_TAG = re.compile(r"""<body\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.I)

_BOX = (
    "width:100%;border-collapse:collapse;margin:0 0 16px 0;"
    "background-color:#fff4e5;border:1px solid #b00020;"
)
_CELL = (
    "padding:12px 16px;border-left:6px solid #b00020;font-family:Arial,Helvetica,sans-serif;"
    "font-size:14px;line-height:1.45;color:#1a1a1a;text-align:left;"
)
_TITLE = "margin:0 0 6px 0;font-size:16px;font-weight:bold;color:#b00020;"
_PARA = "margin:0 0 6px 0;"
_LIST = "margin:0 0 6px 20px;padding:0;"
_PREHEADER = (
    "display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;"
    "font-size:1px;line-height:1px;opacity:0;color:transparent;"
)


def _intro(texts: BannerTexts, brand_name: str | None) -> str:
    if brand_name:
        return texts.intro_brand.replace("{brand}", brand_name).replace(
            "{brand_de}", f"de {brand_name}"
        )
    return texts.intro_generic


def blocks_of(
    texts: LangTexts,
    brand_name: str | None,
    reasons: Sequence[str],
    advice: Mapping[str, str],
) -> list[BannerBlock]:
    """Blocks with the same reasons in every language (``advice``: language → text)."""
    return [
        BannerBlock(
            lang,
            bt.title,
            _intro(bt, brand_name),
            bt.reasons_heading,
            bt.footer,
            advice.get(lang, ""),
            tuple(reasons),
        )
        for bt, lang in texts
    ]


def _line(text: str) -> str:
    """Collapse whitespace: no embedded newline can break the block's line structure."""
    return " ".join(text.split())


def plain_blocks(blocks: Sequence[BannerBlock], newline: str = "\n") -> str:
    """The plain-text banner between marker lines, followed by one blank line."""
    lines = [PLAIN_START]
    for i, block in enumerate(blocks):
        if i:
            lines.append("")
        lines += [_line(block.title), _line(block.intro)]
        if block.advice:
            lines.append(_line(block.advice))
        if block.reasons:
            lines.append(_line(block.reasons_heading))
            lines += [f" - {_line(r)}" for r in block.reasons]
        lines.append(_line(block.footer))
        if block.what_to_do:
            lines.append(_line(block.what_to_do))
    lines += [PLAIN_END, "", ""]
    return newline.join(lines)


def _e(text: str) -> str:
    """HTML-escaped, every non-ASCII character as a numeric entity: the banner reads the
    same whatever charset the part declares, or when it declares none."""
    return html.escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")


def html_blocks(blocks: Sequence[BannerBlock]) -> str:
    """The HTML banner: hidden preheader + ``role="alert"`` table, inline styles only.

    Every interpolated string is escaped (and pure ASCII); the block sits between the HTML
    comment markers.
    """
    e = _e
    parts = [HTML_START, "\n"]
    if blocks:
        preview = f"{blocks[0].title} {blocks[0].intro}"
        parts.append(f'<span style="{_PREHEADER}">{e(preview)}</span>\n')
    parts.append(
        f'<table role="alert" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="{_BOX}"><tr><td style="{_CELL}">\n'
    )
    for i, block in enumerate(blocks):
        sep = "border-top:1px solid #e0b4b4;padding-top:8px;margin-top:8px;" if i else ""
        parts.append(f'<div lang="{e(block.lang)}" style="{sep}">\n')
        parts.append(f'<p style="{_TITLE}">&#9888; {e(block.title)}</p>\n')
        parts.append(f'<p style="{_PARA}">{e(block.intro)}</p>\n')
        if block.advice:
            parts.append(f'<p style="{_PARA}">{e(block.advice)}</p>\n')
        if block.reasons:
            parts.append(f'<p style="{_PARA}font-weight:bold;">{e(block.reasons_heading)}</p>\n')
            items = "".join(f"<li>{e(r)}</li>" for r in block.reasons)
            parts.append(f'<ul style="{_LIST}">{items}</ul>\n')
        parts.append(f'<p style="{_PARA}">{e(block.footer)}</p>\n')
        if block.what_to_do:
            parts.append(f'<p style="margin:0;font-size:13px;">{e(block.what_to_do)}</p>\n')
        parts.append("</div>\n")
    parts.append(f"</td></tr></table>\n{HTML_END}")
    return "".join(parts)


def plain_banner(
    texts: LangTexts,
    brand_name: str | None,
    reasons: Sequence[str],
    advice: Mapping[str, str],
    newline: str = "\n",
) -> str:
    """The plain-text banner for the same reasons in every language."""
    return plain_blocks(blocks_of(texts, brand_name, reasons, advice), newline)


def html_banner(
    texts: LangTexts,
    brand_name: str | None,
    reasons: Sequence[str],
    advice: Mapping[str, str],
) -> str:
    """The HTML banner for the same reasons in every language."""
    return html_blocks(blocks_of(texts, brand_name, reasons, advice))


def has_banner(text: str) -> bool:
    """True when ``text`` (plain or HTML) holds one of our banner markers."""
    return HTML_START in text or HTML_END in text or _PLAIN_MARK.search(text) is not None


def strip_banners(text: str) -> str:
    """Remove every complete banner block of ours (HTML and plain, quoted or not)."""
    # Each pattern begins with a literal: without it in the text (nearly always) the
    # pattern, tried at every offset of a 50 KB body, is not run at all.
    if HTML_START in text:
        text = _HTML_BLOCK.sub("", text)
    if _PLAIN_LEAD in text:
        text = _PLAIN_BLOCK.sub("", text)
    return text


def insert_plain(text: str, banner: str) -> str:
    """Prepend ``banner`` after removing earlier copies; the result is stable."""
    newline = "\r\n" if "\r\n" in text else "\n"
    return banner.replace("\n", newline) + strip_banners(text)


def insert_html(document: str, banner: str) -> str:
    """Insert ``banner`` right after ``<body …>`` (or at the start) after removing copies."""
    clean = strip_banners(document)
    match = _BODY_TAG.search(clean)
    at = match.end() if match else 0
    return clean[:at] + banner + clean[at:]


@dataclass(frozen=True, slots=True)
class Banner:
    """The two renderings of one banner, ready to insert."""

    plain: str
    html: str


def render_blocks(blocks: Sequence[BannerBlock]) -> Banner:
    """Plain and HTML renderings of the same blocks."""
    return Banner(plain_blocks(blocks), html_blocks(blocks))


def render_banner(
    texts: LangTexts,
    brand_name: str | None,
    reasons: Sequence[str],
    advice: Mapping[str, str],
) -> Banner:
    """Plain and HTML renderings of the same banner (the same reasons in every language)."""
    return render_blocks(blocks_of(texts, brand_name, reasons, advice))

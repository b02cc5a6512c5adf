"""The extractor's shortcuts give what the plain definitions give.

- An anchor text that is one plain written host (and path) is read without the text URL
  scan (``_anchor_host``); the reference reads the first URL of the text
  (``_reference_anchor_host``).
- The sink keeps ``parse_url``'s reading of each written URL for the message, so a URL
  written in the text part and again in the HTML part is read once; a sink that reads
  every URL again must store the same links.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.harness.corpus import generate
from milter.links import extract
from milter.links._html import scan_html
from milter.links.extract import Link, _anchor_host, _reference_anchor_host, _Sink
from milter.mime.parse import parse_message
from milter.text.url import ParsedUrl

_SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ANCHOR_PIECES = st.sampled_from(
    [
        ".",
        "..",
        "-",
        "/",
        "//",
        "_",
        "@",
        ":",
        "://",
        "?",
        "#",
        " ",
        "\t",
        ",",
        ")",
        "'",
        "*",
        "|",
        "…",
        "www",
        "WWW",
        "www2",
        "ameli",
        "AMELI",
        "fr",
        "gouv",
        "py",
        "zip",
        "com",
        "x",
        "xn--bcher-kva",
        "3",
        "127",
        "é",
        "ß",
        "\u200b",
        "K",
        "https://",
        "a" * 63,
        "a" * 64,
    ]
)
_LABELS = st.sampled_from(["ameli", "x", "a-b", "www", "WWW", "www2", "3", "xn--bcher-kva", "é"])
_SUFFIXES = st.sampled_from(["fr", "gouv.fr", "py", "zip", "zz", "com", "FR", "1"])
# Mostly the shapes the shortcut takes, and their near misses.
_HOSTLIKE = st.tuples(
    st.sampled_from(["", "", "x-", "-", "(", "www.", "a@"]),
    st.lists(_LABELS, min_size=0, max_size=3),
    _SUFFIXES,
    st.sampled_from(
        [
            *("", "", ".", "/", "/a-b/c", "/a_b", "/x.", "/x)", ":80/", "?q", "/é", "/impôt-2026"),
            *("/a»", "/a…", "/a:b", "/a@b", "/a b", "/\u200b", "/(a)", "/a'", "/www", "/a?b=c#d"),
            *("/a\u00a0b", "/a\u2028", "/_", "/a*", "/a|", "/a%41", "/\\a", "/a,b"),
            *("/https://evil.fr", "/a/hxxp://evil.fr", "/a<b", "/a\x00"),
        ]
    ),
).map(lambda t: t[0] + "".join(label + "." for label in t[1]) + t[2] + t[3])
_ANCHORS = st.one_of(
    _HOSTLIKE,
    st.lists(_ANCHOR_PIECES, max_size=16).map("".join),
    st.text(alphabet="abcdeFR019-./", max_size=40),
    st.text(max_size=30),
)


@_SETTINGS
@given(_ANCHORS)
def test_anchor_host_equals_the_first_url_read_in_the_text(anchor: str) -> None:
    assert _anchor_host(anchor) == _reference_anchor_host(anchor)


def test_anchor_host_shortcut_cases() -> None:
    for anchor in (
        "lettre-culture.fr/agenda-ete",
        "ameli.fr",
        "Ameli.FR/",
        "setup.py",  # a file name, not a link
        "setup.py/x",  # ... unless a path follows
        "a.invalidsuffix/x",
        "www.ameli.fr/x",  # the "www" path
        "1.2.3.4/x",
        ("a" * 64) + ".fr/x",  # a label too long for the shortcut
        ".".join(["a"] * 13) + ".fr",  # 13 labels
        "ameli.fr/" + "x" * 9000,  # longer than a token
        "mairie.fr/impôt-2026",  # a path with any non-delimiter characters
        "mairie.fr/impôt…",
        "ameli.fr/https://evil.fr",  # a scheme in the path: the URL read is that one
        "ameli.fr/a\u200bb",
    ):
        assert _anchor_host(anchor) == _reference_anchor_host(anchor), anchor
    assert _anchor_host("lettre-culture.fr/agenda-ete") == "lettre-culture.fr"
    assert _anchor_host("mairie.fr/impôt-2026") == "mairie.fr"
    assert _anchor_host("ameli.fr/https://evil.fr") == "evil.fr"
    assert _anchor_host("setup.py") == ""
    assert _anchor_host("ameli.fr/" + "x" * 9000) == ""


class _Forgetful(dict[str | tuple[str, str], ParsedUrl]):
    """Readings that are never found: every written URL is parsed when met."""

    asked = 0

    def get(  # type: ignore[override]
        self, key: str | tuple[str, str], default: ParsedUrl | None = None
    ) -> ParsedUrl | None:
        _Forgetful.asked += 1
        return default


class _RereadingSink(_Sink):
    """The sink without its readings: every written URL is parsed when met."""

    def __init__(self, max_links: int) -> None:
        super().__init__(max_links)
        self.readings = _Forgetful()


def _links(sink: _Sink, texts: list[str], htmls: list[str]) -> tuple[tuple[Link, ...], bool]:
    with contextlib.suppress(extract._Full):
        for text in texts:
            sink.add_text(text, extract.LinkSource.TEXT)
        for html in htmls:
            scan_html(html, sink)
    return tuple(sink.links.values()), sink.truncated


_URLS = st.sampled_from(
    [
        "https://click.x.fr/l/1?u=a&b=c",
        "http://x.fr",
        "https://x.fr/a",
        "HTTPS://X.FR/a",
        "www.x.fr/a",
        "x.fr/a",
        "/relative",
        "other/relative",
        "https://ameli.fr@evil.example/",
        "mailto:a@x.fr",
    ]
)
_BASES = st.sampled_from(["", "https://base.example/dir/", "http://x.fr/"])
_ANCHOR_TEXT = st.sampled_from(["", "Lire la suite", "x.fr/a", "https://ameli.fr", "ameli.fr"])


@st.composite
def _message(draw: st.DrawFn) -> tuple[list[str], list[str], int]:
    urls = draw(st.lists(_URLS, min_size=1, max_size=8))
    text = " ".join(f"voir {url} ." for url in draw(st.permutations(urls)))
    htmls = []
    for _ in range(draw(st.integers(1, 2))):  # each part with its own base
        base = draw(_BASES)
        at = draw(st.integers(0, len(urls)))  # links before <base> are read without it
        html = ""
        for index, url in enumerate(urls):
            if base and index == at:
                html += f'<base href="{base}">'
            anchor = draw(_ANCHOR_TEXT)
            html += f'<a href="{url}">{anchor}</a> <img src="{url}"> {draw(_URLS)} '
        htmls.append(html)
    return [text], htmls, draw(st.sampled_from([2, 5, 2000]))


@_SETTINGS
@given(_message())
def test_kept_readings_store_what_reading_every_url_stores(
    message: tuple[list[str], list[str], int],
) -> None:
    texts, htmls, max_links = message
    kept = _links(_Sink(max_links), texts, htmls)
    assert kept == _links(_RereadingSink(max_links), texts, htmls)


def test_kept_readings_on_the_benchmark_corpus() -> None:
    for bench in generate(40):
        mime = parse_message(bench.raw)
        texts, htmls = list(mime.texts), list(mime.htmls)
        assert _links(_Sink(2000), texts, htmls) == _links(_RereadingSink(2000), texts, htmls)
    assert _Forgetful.asked  # the sink reads its readings through them

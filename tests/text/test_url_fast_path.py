"""``parse_url`` reads the common link (``http(s)://plain-host/...``) in one match; it
answers what the general path answers (``_parse_general``, the reference) for every
input, whatever the base and ``assume_http``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.text.url import ParsedUrl, _parse_general, _plain_head, parse_url, read_url

_SCHEMES = st.sampled_from(["http", "https", "HTTPS", "hTtP", "ftp", "javascript", "mailto", ""])
_SEPARATORS = st.sampled_from(["://", "://", ":/", ":\\\\", ":///", "//", ":", ":/\\"])
_HOST_PIECES = st.sampled_from(
    [
        "www",
        ".",
        ".",
        "-",
        "ameli",
        "FR",
        "fr",
        "1",
        "127",
        "0x7f",
        "xn--fiq228c",
        "xn--",
        "é",
        "\u200b",
        "\u202e",
        "%41",
        "@",
        "user@",
        ":80",
        ":x",
        "[::1]",
        "[",
        "_",
        " ",
    ]
)
_REST_PIECES = st.sampled_from(
    [
        "/",
        "?",
        "#",
        "a",
        "b=c",
        "&",
        " ",
        "\t",
        "\n",
        "\r",
        "\x00",
        "\x7f",
        "\\",
        "@",
        "é",
        "\u200d",
        "\u202e",
        "impôt",
        "\u00a0",
        "»",
    ]
)
_ENDS = st.sampled_from(["", "", "", " ", "\x01", "\n", "\u200b"])


@st.composite
def _raw_urls(draw: st.DrawFn) -> str:
    host = "".join(draw(st.lists(_HOST_PIECES, max_size=6)))
    rest = "".join(draw(st.lists(_REST_PIECES, max_size=6)))
    return draw(_ENDS) + draw(_SCHEMES) + draw(_SEPARATORS) + host + rest + draw(_ENDS)


@st.composite
def _near_simple(draw: st.DrawFn) -> str:
    """Mostly URLs the one-match path takes, with one odd character somewhere."""
    scheme = draw(st.sampled_from(["http://", "https://", "HTTPS://", "", "", "ftp:"]))
    host = "".join(
        draw(
            st.lists(st.sampled_from(["www", ".", "ameli", "fr", "1", "-", ":", "%41"]), min_size=1)
        )
    )
    rest = "".join(draw(st.lists(_REST_PIECES, max_size=6)))
    return scheme + host + rest + draw(_ENDS)


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(_raw_urls(), _near_simple()),
    st.sampled_from(["", "https://base.fr/dir/page", "http://b.fr", "mailto:x@y.fr"]),
    st.booleans(),
)
def test_parse_url_answers_what_the_general_path_answers(
    raw: str, base: str, assume_http: bool
) -> None:
    parsed = parse_url(raw, base, assume_http=assume_http)
    assert parsed == _parse_general(raw, base, assume_http)
    assert read_url(raw, base, assume_http) == tuple(parsed)


def test_long_and_plain_hosts() -> None:
    for raw in (
        "https://" + "a." * 130 + "fr/",
        "https://x.fr/",
        "https://x.fr/impôt-2026?q=é#à",  # non-ASCII after the host: one match too
        "https://x.fr/a\u202eb",  # a bidi control: the general path (flagged, removed)
        "https://x.fr/a\u200bb",  # an invisible character: likewise
        "https://x.fr/a\u00a0",
        "http://0x7f.1/a",
        "https://a..b",
    ):
        assert parse_url(raw) == _parse_general(raw, "", False)


def test_tabs_and_line_ends_inside_a_link_are_removed() -> None:
    """Tab, CR and LF inside a written URL are dropped as browsers drop them (WHATWG URL:
    "remove all ASCII tab or newline"), on the fast path as on the general one: a fixed
    example each, since generated URLs hit them by chance only."""
    for raw, target in (
        ("https://a.example/x\ry", "https://a.example/xy"),
        ("https://a.example/x\ty", "https://a.example/xy"),
        ("https://a.example/x\ny", "https://a.example/xy"),
        ("https://a.example/x\r\ny?q=1\t2", "https://a.example/xy?q=12"),
    ):
        parsed = parse_url(raw)
        assert parsed.target == target, raw
        assert parsed.host == "a.example"
        assert parsed == _parse_general(raw, "", False)


def test_the_head_cache_keeps_short_heads_only() -> None:
    """The one-match path's reading of ``http(s)://host`` is cached by the text up to the
    first "/" (bounded memory: at most 8 + 255 characters a key); longer heads, and heads
    that are no plain host, are read as before."""
    _plain_head.cache_clear()
    for raw in ("https://" + "a" * 300 + "/x", "https://" + "a." * 200 + "fr"):
        assert parse_url(raw) == _parse_general(raw, "", False)
    assert _plain_head.cache_info().currsize == 0
    for raw in ("https://x.fr/a", "http://x.fr", "https://x.fr?q=1#f", "https://u@x.fr/"):
        assert parse_url(raw) == _parse_general(raw, "", False)
    assert _plain_head.cache_info().currsize == 4


def test_parse_url_gives_a_parsed_url_whichever_path_read_it() -> None:
    """read_url reads the one-match path inline and returns a plain tuple for it;
    parse_url makes every reading a ParsedUrl (its callers read fields by name)."""
    for raw in ("https://x.fr/a?b", "http://x.fr", "HTTPS://x.fr/a", "x.fr/a", "mailto:a@b.fr"):
        for assume_http in (False, True):
            parsed = parse_url(raw, assume_http=assume_http)
            assert type(parsed) is ParsedUrl, raw
            assert tuple(parsed) == read_url(raw, "", assume_http)
    assert type(read_url("https://x.fr/a")) is tuple  # the one-match path: no named tuple

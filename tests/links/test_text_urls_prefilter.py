"""The text URL scan only looks at tokens that can hold a URL; it finds what reading
every token would find (the plain definition below)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.links import extract as extract_module
from milter.links._anchors import TOKEN_DELIMS, has_url_anchor, token_chars
from milter.links.extract import extract_links, find_text_urls
from milter.text.url import parse_url

_EVERY_TOKEN = re.compile(r"[^\s<>\"'`\x00-\x1f\x7f]+")


def _plain(text: str) -> Iterator[tuple[str, bool]]:
    """Every whitespace-delimited token read, as before the pre-filter."""
    for match in _EVERY_TOKEN.finditer(text):
        token = match.group()
        if len(token) > extract_module._MAX_TOKEN or ("." not in token and "://" not in token):
            continue
        start = extract_module._START_RE.search(token)
        if start is not None:
            url = extract_module._trim(token[start.start() :])
            if len(url) > 4:
                yield url, "://" in url[:12]
            continue
        candidate = extract_module._trim(token)
        if extract_module._BARE_RE.fullmatch(candidate) and extract_module._bare_domain_ok(
            candidate
        ):
            yield candidate, False


_PIECES = st.sampled_from(
    [
        " ",
        "\n",
        "\t",
        "\u00a0",
        ".",
        "..",
        ",",
        ")",
        "(",
        "«",
        "»",
        "'",
        '"',
        "<",
        ">",
        "://",
        ":",
        "/",
        "?",
        "#",
        "@",
        "www",
        "www1",
        "WwW",
        "http",
        "https",
        "hxxp",
        "ftp",
        "ameli",
        "fr",
        "gouv",
        "x",
        "é",
        "py",
        "setup",
        "3",
        "14",
        "-",
        "_",
        "…",
        "*",
        "localhost",
        "https://localhost/x",
        "impots.gouv.fr",
        "www.x.fr",
        "a.b.c.d.e",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_prefiltered_scan_finds_what_reading_every_token_finds(text: str) -> None:
    assert list(find_text_urls(text)) == list(_plain(text))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_prefiltered_scan_on_any_text(text: str) -> None:
    assert list(find_text_urls(text)) == list(_plain(text))


def test_a_long_dotless_token_is_read_once() -> None:
    """1 MB without a usable dot: no candidate, and the pattern stays linear."""
    text = ("a" * 500_000 + ". ") * 2
    assert list(find_text_urls(text)) == []


def test_www_in_any_case_starts_a_url_even_without_a_known_suffix() -> None:
    for text in ("voir WwW.intranet/page", "voir www2.intranet", "(WWW.x.internal)"):
        assert list(find_text_urls(text)) == list(_plain(text)) != []


def _plain_targets(text: str) -> set[str]:
    readings = (parse_url(url, assume_http=not has_scheme) for url, has_scheme in _plain(text))
    return {parsed.target for parsed in readings if parsed.target}


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_PIECES, max_size=30).map("".join), st.text(max_size=60)))
def test_a_text_part_gives_the_links_of_every_token(text: str) -> None:
    """The sink skips texts without an anchor before the scan: what it keeps is what
    reading every token gives."""
    assert {link.target for link in extract_links([text], [])} == _plain_targets(text)


def test_texts_without_an_anchor_are_skipped_and_the_others_read() -> None:
    for text in ("Bonjour. A bientot.", "https://localhost/x", "voir ameli.fr.", "3.14 km"):
        assert {link.target for link in extract_links([text], [])} == _plain_targets(text)


def test_a_token_starting_with_its_scheme_reads_as_the_pattern_reads_it() -> None:
    """Tokens starting with http(s):// skip the start pattern's search (its match is at 0)."""
    for text in (
        "http://",
        "https://x",
        "https://x.fr/a).",
        "http://x.fr/a(b)",
        "https://ameli.fr@evil.fr/",
        "https://x.fr/https://y.fr",
        "(https://x.fr/a)",
        "http://www.x.fr",
        "HTTPS://x.fr",
    ):
        assert list(find_text_urls("voir " + text + " ici")) == list(
            _plain("voir " + text + " ici")
        )


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_PIECES, max_size=30).map("".join), st.text(max_size=60)))
def test_a_text_without_a_url_anchor_holds_no_url(text: str) -> None:
    """What the HTML scan leaves out before batching texts (and the sink before the
    scan): a text without "://" nor a dot followed by a token character."""
    if not has_url_anchor(text):
        assert list(_plain(text)) == []


def test_url_anchors() -> None:
    for text in ("https://x", "voir ameli.fr.", "3.14 km", "a.é", "x://", "www.x"):
        assert has_url_anchor(text), text
    for text in ("Bonjour. A bientot.", "fin.", "a. b", "a..", "x:y", ":/ /", "a.\u00a0b"):
        assert not has_url_anchor(text), text


def test_a_token_starting_far_before_its_anchor_is_read_whole() -> None:
    """The scan reads a token's start from the few characters before its anchor, and from
    the whole text when the token runs further back: the same tokens either way."""
    for size in (0, 1, 30, 31, 32, 33, 34, 64, 100, 9000):
        for head in ("", "voir ", "x" * 40 + " ", "a.b "):
            for anchor in (".fr/page", "://x.fr/a", ".b.fr", "www.x.fr"):
                text = head + "h" * size + anchor + " puis https://y.fr/b." + " z" * 3
                assert list(find_text_urls(text)) == list(_plain(text)), (size, head, anchor)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "-", "é", ".", "/", " ", "://", "x" * 31]), max_size=40))
def test_long_tokens_read_backward(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert list(find_text_urls(text)) == list(_plain(text))


def test_the_delimiters_are_white_space_quotes_angles_and_controls() -> None:
    """TOKEN_DELIMS spells \\s out: the same characters, every code point."""
    spelled = re.compile(rf"[{TOKEN_DELIMS}]")
    defined = re.compile(r"[\s<>\"'`\x00-\x1f\x7f]")
    for code in range(0x110000):
        char = chr(code)
        assert bool(spelled.match(char)) == bool(defined.match(char)), hex(code)


def test_the_token_classes_are_the_negated_delimiters() -> None:
    """token_chars() spells [^TOKEN_DELIMS] (and with ``but``, [^TOKEN_DELIMS...]) as a
    positive class: the same characters, every code point; and the patterns built on it
    are the ones the scan uses."""
    pairs = [
        (re.compile(f"[{token_chars(but)}]"), re.compile(f"[^{TOKEN_DELIMS}{but}]"))
        for but in ("", ":", ".", "a:", "\x10<")  # (the last two already delimiters)
    ]
    for code in range(0x110000):
        char = chr(code)
        for positive, negated in pairs:
            assert bool(positive.match(char)) == bool(negated.match(char)), hex(code)
    assert extract_module._TOKEN_RUN_RE.pattern == f"[{token_chars()}]*"
    assert f"(/[{token_chars(':')}]*)?" in extract_module._HOST_ANCHOR_RE.pattern

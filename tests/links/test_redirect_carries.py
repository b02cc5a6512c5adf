"""``carries_nothing`` lets most links skip the redirect unwrapping: whenever it says a
URL carries nothing, the full unwrapping (``_unwrap_parsed``, the reference) finds
nothing either; and it does say so for ordinary tracking links."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from milter.links import redirect
from milter.text.url import parse_url

_STARTS = ["http://", "HtTpS://", "hxxps://", "HXXP://", "//", "wWw.", "WWW.", "www", "http:/"]
_TAILS = ["evil.fr/a?b=1", "evil.fr/a?b=1", "evil.fr", "x", "", "é/ü", "a%2Fb"]


def _encoded(start: str, tail: str, how: int, mask: int) -> str:
    text = start + tail
    if how == 0:
        return text
    if how == 1:
        return quote(text, safe="")
    if how == 2:
        return quote(quote(text, safe=""), safe="")
    if how == 3:  # some characters percent-encoded, some not (once or twice)
        return "".join(
            (f"%{ord(c):02X}" if mask >> (i % 16) & 1 else c) if c.isascii() else c
            for i, c in enumerate(text)
        )
    raw = text.encode()
    if how == 4:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if how == 5:
        return base64.b64encode(raw).decode()
    if how == 6:
        return "a1" + base64.urlsafe_b64encode(raw).decode()
    return quote(base64.b64encode(raw).decode(), safe="")  # "+", "/", "=" encoded


_VALUES = st.one_of(
    st.builds(
        _encoded,
        st.sampled_from(_STARTS),
        st.sampled_from(_TAILS),
        st.integers(0, 7),
        st.integers(0, 0xFFFF),
    ),
    st.text(alphabet="%2F3a6aHSdVLy8w.=+&/:#?é", max_size=12),
)
_NAMES = st.one_of(
    st.sampled_from(redirect.TARGET_PARAMS),
    st.sampled_from(["URL", "utm_source", "%75", "a+b", ""]),
)
_HOSTS = st.sampled_from(
    [
        "click.lettre.fr",
        "www.google.fr",
        "www.bing.com",
        "eur01.safelinks.protection.outlook.com",
        "urldefense.proofpoint.com",
        "urldefense.com",
        "x1.r.us-east-1.awstrack.me",
    ]
)
_PATHS = st.sampled_from(
    [
        "",
        "/",
        "/l/8e7a",
        "/url",
        "/ck/a",
        "/v2/url",
        "/v3/__https://x.fr/__;!!A$",
        "/v3/__www.x.fr/a__;!!A$",
        "/a:b",
        "/%41",
        "/r/https%3A%2F%2Fevil.fr",
        "/L0/hxxp%3a%2f%2fevil.fr/1/2",
    ]
)


@st.composite
def _urls(draw: st.DrawFn) -> str:
    url = f"https://{draw(_HOSTS)}{draw(_PATHS)}"
    params = draw(
        st.lists(st.tuples(_NAMES, _VALUES, st.sampled_from(["=", "=", "", "=="])), max_size=4)
    )
    if params or draw(st.booleans()):
        url += "?" + draw(st.sampled_from(["&", ";", "&&"])).join(n + e + v for n, e, v in params)
    if draw(st.booleans()):
        url += draw(st.sampled_from(["#", "#u=https://x.fr", "#a:b?c"]))
    return url


def _check(url: str) -> None:
    parsed = parse_url(url)
    if redirect.carries_nothing(parsed):
        assert redirect._unwrap_parsed(parsed) is None, url
    if not redirect.may_carry(parsed):  # what the links check skips unwrapping on
        assert redirect.unwrap_once(url, parsed) is None, url


@settings(max_examples=1500, deadline=None)
@given(_urls())
@example("https://t.fr/c?u=aHR0cHM6Ly9ldmlsLmZyL2E")
@example("https://t.fr/c?u=Ly9ldmlsLmZyL2E_Yj0x")
@example("https://t.fr/r/https%3A%2F%2Fevil.fr?utm=1")
@example("https://urldefense.com/v3/__www.x.fr/a__;!!A$")
@example("https://t.fr/c?x=1&r=%2568ttps%253A%252F%252Fevil.fr")
@example("https://t.fr/c?x=1&r=%2B%2F%2Fevil.fr")
@example("https://t.fr/c?x=1&r=V1dXLmV2aWwuZnI")
def test_what_carries_nothing_unwraps_to_nothing(url: str) -> None:
    _check(url)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="%2F3A6aHFSdV1Lyw.W=+&/:é\u017f", max_size=30))
def test_any_query_text_that_carries_nothing_unwraps_to_nothing(query: str) -> None:
    _check("https://click.lettre.fr/l/1?" + query)
    _check("https://click.lettre.fr/l/1?u=" + query)


def test_plain_tracking_links_carry_nothing() -> None:
    for url in (
        "https://click.voyages-ete.fr/l/8e7a9f199504?u=actualite-sur-compte&utm_source=lettre",
        "https://www.lettre.fr/agenda/ete-2026",
        "https://www.lettre.fr/agenda?id=42&utm_medium=email%20hebdo#haut",
        "https://www.lettre.fr/a#frag:with?colon",
    ):
        assert redirect.carries_nothing(parse_url(url)), url
    for url in (
        "https://t.fr/c?u=https://evil.fr/",
        "https://t.fr/c?u=www.evil.fr",
        "https://t.fr/redirect/https:%2F%2Fevil.fr",
        "https://www.google.fr/url?q=x",  # a known redirector: always read in full
        "https://t.fr/c?u=aHR0cHM6Ly9ldmlsLmZyL2E",
    ):
        assert not redirect.carries_nothing(parse_url(url)), url
        assert redirect.may_carry(parse_url(url)), url
    assert not redirect.may_carry(parse_url("mailto:a@x.fr?u=https://evil.fr"))
    assert not redirect.may_carry(parse_url("https://t.fr/c?u=https://e.fr/" + "x" * 17_000))


def _may_carry_by_definition(parsed: redirect.Reading) -> bool:
    url = parsed.target
    http = url[:8].lower().startswith(("http://", "https://"))
    return len(url) <= redirect._MAX_URL and http and not redirect.carries_nothing(parsed)


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from(
        ["https://img.lettre.fr", "HTTP://x.fr", "https://urldefense.com", "ftp://x.fr", "x.fr"]
    ),
    st.text(alphabet="/?#:%=&wW.aH-\\@", max_size=16),
)
@example("https://urldefense.com", "/v3/__https://x.fr/__;!!A$")
@example("https://img.lettre.fr", "/a.jpg#x?u=https://evil.fr")
@example("https://img.lettre.fr", "/a:b")
def test_may_carry_answers_as_its_definition(start: str, rest: str) -> None:
    """The one match for links without a query answers what carries_nothing answers."""
    parsed = parse_url(start + rest)
    assert redirect.may_carry(parsed) == _may_carry_by_definition(parsed), start + rest


@settings(max_examples=500, deadline=None)
@given(_urls())
def test_may_carry_answers_as_its_definition_on_redirector_shapes(url: str) -> None:
    parsed = parse_url(url)
    assert redirect.may_carry(parsed) == _may_carry_by_definition(parsed), url


@pytest.mark.parametrize("size", [1, 100, 127, 128, 129, 130, 400, 16_000])
@pytest.mark.parametrize("tail", ["", "#u=https://e.fr", "a:b", "%3A", "?u=https://e.fr", "?"])
def test_may_carry_answers_as_its_definition_on_long_paths(size: int, tail: str) -> None:
    """Short and long paths (the one match is tried on the short ones only)."""
    for start in ("https://img.lettre.fr/", "https://urldefense.com/v3/__www.e.fr/"):
        parsed = parse_url(start + "a/b-" * (size // 4) + "x" * (size % 4) + tail)
        assert redirect.may_carry(parsed) == _may_carry_by_definition(parsed), parsed.target


def test_an_urldefense_link_without_colon_nor_percent_may_carry() -> None:
    parsed = parse_url("https://urldefense.com/v3/__www.evil.fr/x__;!!A")
    assert redirect.unwrap_once(parsed.target, parsed) is not None
    assert redirect.may_carry(parsed)


@pytest.mark.parametrize(
    "url",
    [
        "https://x.fr/p?a=1#https://evil.fr/",
        "https://x.fr/p?a=1#u=https%3A%2F%2Fevil.fr",
        "https://x.fr/p?#www.evil.fr",
        "http://x.fr/?utm=nl#aHR0cHM6Ly9ldmlsLmZy",
    ],
)
def test_a_url_in_the_fragment_is_not_carried(url: str) -> None:
    """The fragment is never read as the query (the browser does not send it; unwrapping
    reads parameters only): a query that carries nothing is "nothing" whatever follows
    its "#" (review: reading the query through the fragment passed every other test)."""
    reading = parse_url(url)
    assert redirect.carries_nothing(reading)
    assert not redirect.may_carry(reading)
    assert redirect._unwrap_parsed(reading) is None

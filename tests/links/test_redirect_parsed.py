"""Redirect unwrapping reads host, path and query from the package's one URL parser
(``parse_url``, the browser's reading) instead of ``urllib.parse``. Where the two
parsers agree (ASCII hosts without ``%``, ``\\``, ``[`` or a trailing dot), the answer is
the one the ``urlsplit`` version gave (the plain definition below); where they differ,
the browser's host decides (explicit cases at the end)."""

from __future__ import annotations

import base64
import html
from urllib.parse import parse_qsl, quote, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.links import redirect
from milter.links.extract import extract_links
from milter.text.url import parse_url


def _plain_once(url: str) -> tuple[str, str] | None:
    """``unwrap_once`` as it was, over ``urlsplit`` and ``parse_qsl``."""
    if len(url) > redirect._MAX_URL or not url[:8].lower().startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host, path = (parts.hostname or "").lower(), parts.path
    params = parse_qsl(parts.query, keep_blank_values=True) if parts.query else []
    for rule in redirect._RULES:
        found = rule.body(path, params) if rule.host.search(host) else None
        if found:
            return found, rule.name
    found = redirect._urldefense_v3(url)
    if found:
        return found, "urldefense-v3"
    found = redirect._embedded(host, path)
    if found and redirect._looks_like_url(found):
        return found, "awstrack" if host.endswith("awstrack.me") else "path-embedded"
    found = redirect._generic(params)
    return (found, "query-param") if found else None


def _plain(url: str, max_depth: int = 5) -> tuple[str, tuple[str, ...], tuple[str, ...], bool]:
    chain, rules = [url], []
    for depth in range(max_depth + 1):
        step = _plain_once(chain[-1])
        if step is None:
            break
        inner = redirect._absolute(step[0]).target
        if inner in chain:
            break
        if depth == max_depth:
            return chain[-1], tuple(chain), tuple(rules), True
        chain.append(inner)
        rules.append(step[1])
    return chain[-1], tuple(chain), tuple(rules), False


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


_HOSTS = st.sampled_from(
    [
        "www.google.fr",
        "google.com",
        "GOOGLE.co.uk",
        "www.bing.com",
        "bing.com",
        "eur01.safelinks.protection.outlook.com",
        "urldefense.proofpoint.com",
        "urldefense.com",
        "x1.r.us-east-1.awstrack.me",
        "t.lettre.fr",
        "evil.example",
        "ameli.fr",
    ]
)
_PATHS = st.lists(
    st.sampled_from(
        [
            "/url",
            "/ck/a",
            "/v1/url",
            "/v2/url",
            "/v3/__https://example.com/a?b=c*d__;Jg!!ABC$",
            "/v3/__www.example.com/a__;!!ABC$",
            "/L0/",
            "/c/1",
            "/https:%2F%2Fevil.fr%2Fa",
            "/http://evil.fr/b",
            "/HXXPS%3a%2f%2fx.fr",
            "/1/0100",
            "/",
            "@",
            ";",
            "",
        ]
    ),
    max_size=4,
).map("".join)
_NAMES = st.sampled_from(
    ["url", "URL", "u", "q", "redirect", "to", "r", "utm_source", "data", "%75rl", "a+b", ""]
)


@st.composite
def _urls(draw: st.DrawFn, depth: int = 2) -> str:
    scheme = draw(st.sampled_from(["https", "http", "HTTPS"]))
    userinfo = draw(st.sampled_from(["", "", "user@", "a:b@"]))
    port = draw(st.sampled_from(["", "", ":8080"]))
    url = f"{scheme}://{userinfo}{draw(_HOSTS)}{port}{draw(_PATHS)}"
    inner = draw(_urls(depth - 1)) if depth > 0 and draw(st.booleans()) else "https://evil.fr/x"
    values = st.sampled_from(
        [
            inner,
            quote(inner, safe=""),
            quote(quote(inner, safe=""), safe=""),
            _b64(inner),
            "a1" + _b64(inner),
            "www.evil.fr",
            "//evil.fr/a",
            "https-3A__www.example.com_path",
            "mot-cle-de-suivi",
            "",
            "%",
            "+",
        ]
    )
    params = draw(st.lists(st.tuples(_NAMES, values, st.booleans()), max_size=4))
    if params or draw(st.booleans()):
        url += "?" + "&".join(n + ("=" + v if eq else "") for n, v, eq in params)
    if draw(st.booleans()):
        url += draw(st.sampled_from(["#", "#frag", "#a?url=https://evil.fr/", "#/x"]))
    return url


@settings(max_examples=600, deadline=None)
@given(_urls())
def test_unwrap_reads_what_the_urlsplit_version_read(url: str) -> None:
    result = redirect.unwrap(url)
    assert (result.url, result.chain, result.rules, result.depth_exceeded) == _plain(url)
    again = parse_url(result.url)  # the innermost URL read again: same host, same parts
    assert result.final[:5] == again[:5]
    assert result.final.path_query() == again.path_query()


@settings(max_examples=200, deadline=None)
@given(_urls())
def test_a_links_own_reading_gives_the_same_unwrapping(url: str) -> None:
    href = html.escape(url)
    for link in extract_links([url], [f'<a href="{href}">x</a><a href=" {href}">y</a>']):
        assert redirect.unwrap(link.target, parsed=link.parsed) == redirect.unwrap(link.target)


def test_path_query_matches_urlsplit_on_plain_urls() -> None:
    for url in (
        "https://a.fr/p/q?x=1&y#f?g",
        "https://a.fr?x",
        "https://a.fr#f?x",
        "https://a.fr",
        "http://u@a.fr:81/p?",
    ):
        parts = urlsplit(url)
        assert parse_url(url).path_query() == (parts.path, parts.query)
    assert parse_url("mailto:a@b.fr?subject=x").path_query() == ("", "")


def test_the_browsers_host_decides_where_the_parsers_differ() -> None:
    """``urlsplit`` sees ``google.com.`` / ``%67oogle.com`` / a full-width name and no
    Google redirector; a browser goes to google.com, so the target is read."""
    for host in ("google.com.", "%67oogle.com", "\uff47oogle.com"):
        url = f"https://{host}/url?q=https://evil.example/a"
        assert redirect.unwrap(url).url == "https://evil.example/a", host
    # a backslash ends the authority for a browser: the path is /url, not part of the host
    assert redirect.unwrap("https://evil.fr\\url?u=https://x.fr/").url == "https://x.fr/"
    # urlsplit refuses an unbalanced bracket; the browser's reading still unwraps
    found = redirect.unwrap_once("https://a[b.fr/r?url=https://evil.example/a")
    assert found == ("https://evil.example/a", "query-param")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab=&%+;2F0x é", max_size=30))
def test_query_split_is_parse_qsl(query: str) -> None:
    assert redirect._params(query) == parse_qsl(query, keep_blank_values=True)


def test_a_urldefense_v3_wrapper_without_any_scheme_inside_is_unwrapped() -> None:
    url = "https://urldefense.com/v3/__www.example.com/a__;!!ABC$"
    assert _plain(url)[0] == "http://www.example.com/a"
    assert redirect.unwrap(url).url == "http://www.example.com/a"

"""Property tests: the link library never raises on hostile input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from milter.links import extract_links
from milter.links.redirect import unwrap
from milter.links.registry import brand_index
from milter.policy.loader import load_policy

_INDEX = brand_index(load_policy(None))
_URLISH = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz0123456789.-:/?#@%&=[]\\ "))
    | st.characters(),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(_URLISH, _URLISH)
def test_extract_never_raises(text: str, html: str) -> None:
    links = extract_links(
        [text, "http://" + text], ["<a href='" + html + "'>" + text + "</a>", html]
    )
    for link in links:
        assert link.target
        assert link.host == link.host.lower()


@settings(max_examples=300, deadline=None)
@given(_URLISH)
def test_classify_and_unwrap_never_raise(text: str) -> None:
    result = _INDEX.classify(text)
    assert result is None or result.brand_id
    wrapped = unwrap("https://r.example/?url=" + text)
    assert wrapped.chain[0].startswith("https://r.example/")

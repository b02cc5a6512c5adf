"""Redirector unwrapping from the URL alone."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from milter.links.redirect import unwrap, unwrap_once


def _b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_bing_ck_a1_base64url() -> None:
    target = "https://moncompteformation-gouv.fr/connexion?id=42"
    url = (
        "https://www.bing.com/ck/a?!&&p=0123abcdJmltdHM9MTc1MzY2MDgwMA&ptn=3&ver=2&hsh=4"
        f"&fclid=148b8bc7-6c57-69bf-167c-9dc06de46818&u=a1{_b64url(target)}&ntb=1"
    )
    result = unwrap(url)
    assert result.url == target
    assert result.rules == ("bing-ck",)
    assert result.chain == (url, target)


def test_bing_real_corpus_link() -> None:
    url = (
        "https://www.bing.com/ck/a?!&&p=e2e8b6062afedcde710b825fbcf7431d33d5460b959b22fa341c380ae8a67dab"
        "JmltdHM9MTc2NjM2MTYwMA&ptn=3&ver=2&hsh=4&fclid=3e652a3a-df98-6a9a-3f57-3fecde4e6be2"
        "&u=a1aHR0cHM6Ly9oaXJlbWVkaWNhbHMuY29tL3Byb2R1Y3QvcG93ZXItY3YtcGFjay8"
    )
    assert unwrap(url).url == "https://hiremedicals.com/product/power-cv-pack/"


def test_awstrack_l0_path() -> None:
    url = (
        "https://xfhmv4ws.r.us-east-1.awstrack.me/L0/https:%2F%2Fsidvitro.click%2FCredit-HSN.html"
        "/1/0100019609e3bbac-8ade11b9-db1e-4e53-a0de-5fc49e771c11-000000/m4GjVhwRsF4lGaLshhi_dYkQW_E=420"
    )
    result = unwrap(url)
    assert result.url == "https://sidvitro.click/Credit-HSN.html"
    assert result.rules == ("awstrack",)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://www.google.com/url?sa=t&url=https%3A%2F%2Fevil.example%2Fa", "google-url"),
        ("https://www.google.fr/url?q=https://evil.example/a&sa=D", "google-url"),
        (
            "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fevil.example%2Fa"
            "&data=05%7C01%7C&reserved=0",
            "safelinks",
        ),
        ("https://e.comms.aol.net/click?u=https%3A%2F%2Fevil.example%2Fa&s=1", "query-param"),
        ("https://t.example/r?x=1&redirect=" + _b64url("https://evil.example/a"), "query-param"),
        ("https://tracker.example/c/123/https://evil.example/a", "path-embedded"),
    ],
)
def test_known_wrappers(url: str, rule: str) -> None:
    result = unwrap(url)
    assert result.url == "https://evil.example/a"
    assert result.rules == (rule,)


def test_urldefense_v2_and_v3() -> None:
    v2 = "https://urldefense.proofpoint.com/v2/url?u=https-3A__www.example.com_path&d=DwMFaQ&c=x"
    assert unwrap(v2).url == "https://www.example.com/path"
    v3 = "https://urldefense.com/v3/__https://example.com/a?b=c*d__;Jg!!ABC$"
    assert unwrap(v3).url == "https://example.com/a?b=c&d"


def test_nested_and_depth_limit() -> None:
    inner = "https://impots-gouv.fr/login"
    layer = inner
    for _ in range(4):
        layer = "https://r.example/go?url=" + quote(layer, safe="")
    full = unwrap(layer)
    assert full.url == inner
    assert len(full.chain) == 5
    assert not full.depth_exceeded
    limited = unwrap(layer, max_depth=2)
    assert len(limited.chain) == 3
    assert limited.depth_exceeded
    assert limited.url != inner


def test_loop_stops() -> None:
    url = "https://a.example/r?url=https://a.example/r?url=x"
    result = unwrap(url)
    assert len(result.chain) <= 3


@pytest.mark.parametrize(
    "url",
    [
        "https://www.linkedin.com/slink?code=eXkEvNq7",
        "https://example.com/search?q=ameli+remboursement",
        "https://example.com/?u=a1notbase64!!",
        "mailto:a@b.example",
        "",
    ],
)
def test_not_a_redirector(url: str) -> None:
    assert unwrap_once(url) is None
    assert unwrap(url).chain == (url,)

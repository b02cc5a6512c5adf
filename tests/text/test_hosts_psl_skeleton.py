"""Host helpers: offline public-suffix split, IDNA forms, IP parsing, skeletons."""

from __future__ import annotations

import socket

import pytest
import tldextract

from milter.links.skeleton import describe_edit, edit_distance
from milter.text import psl
from milter.text.confusables import skeleton
from milter.text.host import parse_ipv4
from milter.text.idna import to_ascii as host_to_ascii
from milter.text.idna import to_unicode as host_to_unicode
from milter.text.psl import registrable_domain, split_host

_HOSTS = [
    "cfspart.impots.gouv.fr.loginmdp.hansor.pw",
    "impots.gouv.fr",
    "gouv.fr",
    "www.bbc.co.uk",
    "a.b.kawasaki.jp",
    "city.kawasaki.jp",
    "www.ck",
    "x.y.ck",
    "foo.example",
    "localhost",
    "foo.xn--p1ai",
    "ameli-automated.000webhostapp.com",
    "a.b.c.pvt.k12.ma.us",
]


@pytest.mark.parametrize("host", _HOSTS)
def test_split_host_matches_tldextract_snapshot(host: str) -> None:
    reference = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)(host)
    assert split_host(host) == (reference.subdomain, reference.domain, reference.suffix)


def test_registrable_domain() -> None:
    assert registrable_domain("cfspart.impots.gouv.fr.loginmdp.hansor.pw") == "hansor.pw"
    assert registrable_domain("www.impots.gouv.fr") == "impots.gouv.fr"
    assert registrable_domain("gouv.fr") == "gouv.fr"


def test_no_network_when_loading_suffix_list(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    psl._extractor.cache_clear()
    psl._rules.cache_clear()
    try:
        assert split_host("ameli-remboursement.fr").domain == "ameli-remboursement"
    finally:
        psl._extractor.cache_clear()
        psl._rules.cache_clear()


def test_idna_forms() -> None:
    assert host_to_unicode("xn--meli-43d.fr") == "аmeli.fr"
    assert host_to_ascii("аmeli.fr") == "xn--meli-43d.fr"
    assert host_to_ascii("AMÉLI.fr") == host_to_ascii("améli.fr")
    assert host_to_unicode("xn--zz-broken!.fr") == "xn--zz-broken!.fr"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("192.168.1.1", ("192.168.1.1", False)),
        ("3232235777", ("192.168.1.1", True)),
        ("0xc0a80101", ("192.168.1.1", True)),
        ("0300.0250.0001.0001", ("192.168.1.1", True)),
        ("192.168.257", ("192.168.1.1", True)),
        ("ameli.fr", None),
        ("1.2.3.4.5", None),
        ("999.1.1.1", None),
        ("4294967296", None),
    ],
)
def test_parse_ipv4(host: str, expected: tuple[str, bool] | None) -> None:
    assert parse_ipv4(host) == expected


def test_skeleton_uses_unicode_confusables() -> None:
    assert skeleton("аmeli") == skeleton("ameli")  # Cyrillic а
    assert skeleton("arneli") == skeleton("ameli")
    assert skeleton("ame1i") == skeleton("ameli")
    assert skeleton("ameIi".lower()) == skeleton("ameli")
    assert skeleton("amélì") == skeleton("ameli")
    assert skeleton("ameli") != skeleton("amelo")


def test_edit_distance_and_description() -> None:
    assert edit_distance("ameli", "aemli", 2) == 1
    assert edit_distance("ameli", "amel", 2) == 1
    assert edit_distance("ameli", "xmelx", 2) == 2
    assert edit_distance("ameli", "zzzzz", 2) == 3
    assert describe_edit("amelli", "ameli") == "repetition"
    assert describe_edit("ameloi", "ameli") == "insertion"
    assert describe_edit("anus", "ants") == "bitsquatting"
    assert describe_edit("ameki", "ameli") == "keyboard replacement"
    assert describe_edit("amela", "ameli") == "vowel-swap"

"""Warning-page links: signed over URL, expiry, recipients and reasons; nothing else passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from milter.actions.redirect import (
    LinkProblem,
    LinkRefused,
    LinkToken,
    RedirectSigner,
    link_query,
    recipient_binding,
    verify_link,
)
from milter.model.findings import Finding, LinkRef, Severity

KEY = b"k" * 32
BASE = "https://tocsin.example/link"
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
ORIGINAL = "https://ameli-remboursement.fr/é?a=1&b=2"
LOOKALIKE = Finding(
    "LINK_LOOKALIKE",
    "links",
    Severity.HIGH,
    "link to ameli-remboursement.fr ~ ameli.fr",
    "ameli",
    {"url": ORIGINAL, "host": "ameli-remboursement.fr", "host_ascii": "ameli-remboursement.fr"},
    LinkRef(ORIGINAL, "ameli-remboursement.fr", "ameli-remboursement.fr"),
)
CLAIM = Finding(
    "DISPLAY_NAME_BRAND", "claim", Severity.CRITICAL, "display name says ameli", "ameli", {}
)


def query_of(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query, keep_blank_values=True).items()}


def signed(rcpts: list[str], lifetime: timedelta = timedelta(days=30)) -> dict[str, str]:
    signer = RedirectSigner.for_message(
        BASE, KEY, rcpts, [LOOKALIKE, CLAIM], lifetime=lifetime, now=NOW
    )
    link = signer(ORIGINAL)
    assert link.startswith(BASE + "?u=")
    return query_of(link)


def refused(query: dict[str, str], **kw: object) -> LinkRefused:
    with pytest.raises(LinkRefused) as info:
        verify_link(query, [KEY], now=NOW, **kw)  # type: ignore[arg-type]
    return info.value


def test_round_trip_carries_url_expiry_recipients_and_reason() -> None:
    query = signed(["Alice@Ville.example", "<bob@ville.example>"])
    assert len(query["s"]) == 32
    assert "=" not in query["u"] + query["r"]
    token = verify_link(query, [b"other" * 8, KEY], now=NOW)
    assert token.url == ORIGINAL
    assert token.recipients == ("alice@ville.example", "bob@ville.example")
    assert token.expires == int((NOW + timedelta(days=30)).timestamp())
    assert token.reasons == ("LINK_LOOKALIKE",)  # the link's own finding, not the claim


def test_expired_link_is_refused_but_still_says_where_it_went() -> None:
    query = signed(["alice@ville.example"], lifetime=timedelta(days=1))
    assert verify_link(query, [KEY], now=NOW + timedelta(hours=23)).url == ORIGINAL
    with pytest.raises(LinkRefused) as info:
        verify_link(query, [KEY], now=NOW + timedelta(days=1, seconds=1))
    assert info.value.problem is LinkProblem.EXPIRED
    assert info.value.token is not None
    assert info.value.token.url == ORIGINAL


def test_link_written_for_another_recipient_is_refused() -> None:
    query = signed(["alice@ville.example"])
    assert verify_link(query, [KEY], now=NOW, recipient="ALICE@ville.example").url == ORIGINAL
    problem = refused(query, recipient="mallory@ville.example")
    assert problem.problem is LinkProblem.WRONG_RECIPIENT
    # swapping the bound recipient breaks the signature
    forged = dict(query, r=link_query(LinkToken(ORIGINAL, 0, ("mallory@x.example",), ()), KEY)["r"])
    assert refused(forged).problem is LinkProblem.INVALID


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("u", "aHR0cHM6Ly9ldmlsLmV4YW1wbGUv"),  # another URL
        ("e", "99999999999"),  # a later expiry
        ("c", "LINK_TRICK"),  # another reason
        ("r", ""),  # unbound
        ("s", "0" * 32),
        ("s", "é" * 32),
        ("u", "***"),  # not base64
        ("e", "１２３"),  # Unicode digits are not a number
    ],
)
def test_tampered_link_is_refused(field: str, value: str) -> None:
    query = signed(["alice@ville.example"])
    problem = refused(dict(query, **{field: value}))
    assert problem.problem is LinkProblem.INVALID
    assert problem.token is None


@pytest.mark.parametrize("missing", ["u", "r", "e", "c", "s"])
def test_unsigned_or_partial_link_is_refused(missing: str) -> None:
    query = signed(["alice@ville.example"])
    if query[missing]:
        del query[missing]
        assert refused(query).problem is LinkProblem.INVALID
    assert refused({"u": query.get("u", "")}).problem is LinkProblem.INVALID


def test_other_key_is_refused() -> None:
    query = signed(["alice@ville.example"])
    with pytest.raises(LinkRefused):
        verify_link(query, [b"x" * 32], now=NOW)
    with pytest.raises(LinkRefused):
        verify_link(query, [], now=NOW)


def test_many_recipients_bind_their_domains() -> None:
    many = [f"user{i:03}@ville.example" for i in range(40)] + ["x@mairie.example"]
    assert recipient_binding(many) == ("@mairie.example", "@ville.example")
    token = verify_link(signed(many), [KEY], now=NOW)
    assert token.bound_to("user007@ville.example")
    assert token.bound_to("new@mairie.example")
    assert not token.bound_to("user007@evil.example")


def test_a_link_without_its_own_finding_gets_the_message_reasons() -> None:
    signer = RedirectSigner.for_message(BASE, KEY, ["a@b.example"], [LOOKALIKE, CLAIM], now=NOW)
    token = verify_link(query_of(signer("https://tracker.example/x")), [KEY], now=NOW)
    assert token.reasons == ("DISPLAY_NAME_BRAND", "LINK_LOOKALIKE")


def test_a_base_url_with_a_query_gets_the_token_appended() -> None:
    token = LinkToken(ORIGINAL, 1, ("a@b.example",), ())
    from milter.actions.redirect import redirect_url

    assert redirect_url(token, "https://t.example/r?x=1", KEY).startswith(
        "https://t.example/r?x=1&u="
    )

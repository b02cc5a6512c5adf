"""plan(): suspicious links neutralised (defang or signed redirect), nothing else touched."""

from __future__ import annotations

import os
import re
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from milter.actions.apply import apply_plan
from milter.actions.redirect import verify_link
from milter.engine.plan import plan
from milter.mime.parse import parse_message
from milter.model.auth import AuthResult, AuthStatus
from milter.model.findings import Finding, LinkRef, Severity
from milter.model.verdict import Disposition, Reason, Verdict
from milter.policy.errors import PolicyInvalid
from milter.policy.loader import load_policy
from milter.policy.model import Policy

TAG = frozenset({"banner", "defang_links", "subject_tag"})
REDIRECTOR = "https://www.bing.com/ck/a?!&&p=3f&u=a1aHR0cHM6Ly9ldmlsLmV4YW1wbGUv&ntb=1"
HTML = (
    '<html><head><style>p{margin:0}</style></head><body class="m">\n'
    '<p>Bonjour <a href="https://evil.example/login">https://www.ameli.fr/</a></p>\n'
    f'<p><a href="{REDIRECTOR.replace("&", "&amp;")}">Mon espace</a></p>\n'
    '<p><a href="https://www.bing.com/search?q=ameli">recherche</a> '
    '<a href="https://www.ameli.fr/assure">ameli.fr</a></p>\n'
    "<p>Ou copiez https://evil.example/login</p>\n</body></html>\n"
)
PLAIN = (
    "Bonjour, allez sur https://evil.example/login (ou evil.example) et pas ailleurs.\n"
    "Site officiel : https://www.ameli.fr/assure\n"
)
RAW = (
    "From: Info <news@shop.example>\r\nTo: a@example.fr\r\nSubject: Votre dossier\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
    "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + PLAIN.replace("\n", "\r\n")
    + "--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + HTML.replace("\n", "\r\n")
    + "--b1--\r\n"
).encode()

MISMATCH = Finding(
    "LINK_TEXT_MISMATCH",
    "links",
    Severity.HIGH,
    "link text shows www.ameli.fr (Assurance Maladie) but goes to evil.example",
    "ameli",
    {"shown": "www.ameli.fr", "href": "https://evil.example/login", "real_host": "evil.example"},
    LinkRef("https://evil.example/login", "evil.example", "evil.example"),
)
BEHIND_REDIRECTOR = Finding(
    "LINK_LOOKALIKE",
    "links",
    Severity.HIGH,
    "link to ameli-remboursement.fr ~ ameli.fr: combosquat (behind a redirector)",
    "ameli",
    {"url": REDIRECTOR, "host": "ameli-remboursement.fr", "host_ascii": "ameli-remboursement.fr"},
    LinkRef(REDIRECTOR, "ameli-remboursement.fr", "ameli-remboursement.fr"),
)


def verdict(*findings: Finding, actions: frozenset[str] = TAG, **kw: object) -> Verdict:
    reason = Reason("score", Disposition.TAG, "score 6")
    return Verdict(Disposition.TAG, None, 6.0, findings, (reason,), actions=actions, **kw)  # type: ignore[arg-type]


def parts(raw: bytes) -> tuple[str, str]:
    msg = message_from_bytes(raw, policy=compat32)
    leaves: list[Message] = [p for p in msg.walk() if not p.is_multipart()]
    plain, rich = (p.get_payload(decode=True).decode("utf-8") for p in leaves)  # type: ignore[union-attr]
    return plain, rich


def delivered(v: Verdict, policy: Policy, raw: bytes = RAW) -> bytes:
    return apply_plan(raw, plan(v, parse_message(raw), policy))


def test_only_the_links_named_by_findings_are_defanged(policy: Policy) -> None:
    out = delivered(verdict(MISMATCH, BEHIND_REDIRECTOR), policy)
    plain, rich = parts(out)
    assert 'href="https://evil.example' not in rich
    assert 'title="hxxps://evil[.]example/login"' in rich
    assert "bing.com/ck/a" not in rich.replace("bing[.]com", "")  # the redirector link too
    # the visible label names where each link really goes, not the redirector
    assert "&#9888; ameli-remboursement[.]fr &#8250; </span>Mon espace</a>" in rich
    assert "&#9888; evil[.]example &#8250; </span>https://www.ameli.fr/</a>" in rich
    # untouched: the official link, another link on the redirector's host, the styles
    assert '<a href="https://www.ameli.fr/assure">ameli.fr</a>' in rich
    assert '<a href="https://www.bing.com/search?q=ameli">recherche</a>' in rich
    assert "<style>p{margin:0}</style>" in rich
    assert "Ou copiez hxxps://evil[.]example/login" in rich
    assert "allez sur hxxps://evil[.]example/login (ou evil[.]example)" in plain
    assert "Site officiel : https://www.ameli.fr/assure" in plain


def test_the_html_outside_the_banner_differs_only_in_the_bad_links(policy: Policy) -> None:
    _, rich = parts(delivered(verdict(MISMATCH), policy))
    without_banner = re.sub(
        r"<!-- tocsin-banner:start -->.*<!-- tocsin-banner:end -->", "", rich, flags=re.S
    )
    label = (
        '<span data-tocsin-host style="color:#b00020;font-weight:bold;">'
        "&#9888; evil[.]example &#8250; </span>"
    )
    expected = HTML.replace(
        'href="https://evil.example/login">', 'title="hxxps://evil[.]example/login">' + label
    )
    expected = expected.replace(
        "copiez https://evil.example/login", "copiez hxxps://evil[.]example/login"
    )
    # (the last line break belongs to the boundary delimiter, RFC 2046 §5.1.1)
    assert without_banner.replace("\r\n", "\n") == expected.removesuffix("\n")


def test_banner_reasons_name_the_host_defanged(policy: Policy) -> None:
    plain, rich = parts(delivered(verdict(MISMATCH), policy))
    assert "mène en réalité à evil[.]example" in plain  # the French reason, in French
    assert "really goes to evil[.]example" in plain
    assert "m&#232;ne en r&#233;alit&#233; &#224; evil[.]example" in rich
    assert "really goes to evil[.]example" in rich


def test_without_defang_links_action_links_stay(policy: Policy) -> None:
    plain, rich = parts(delivered(verdict(MISMATCH, actions=frozenset({"banner"})), policy))
    assert 'href="https://evil.example/login"' in rich
    assert "allez sur https://evil.example/login" in plain


def test_no_link_findings_means_no_link_changes(policy: Policy) -> None:
    phrase = Finding("URGENCY", "phrases", Severity.MEDIUM, "urgency", None, {})
    plain, rich = parts(delivered(verdict(phrase), policy))
    assert rich.count("href=") == HTML.count("href=")
    assert "https://evil.example/login" in plain


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret" / "redirect.key"
    secret.parent.mkdir()
    secret.write_bytes(os.urandom(24).hex().encode() + b"\n")
    secret.chmod(0o600)
    return secret


def _redirect_policy(tmp_path: Path, extra: str = "") -> Policy:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "actions.yaml").write_text(
        "actions:\n  link_rewrite: redirect\n  redirect_url: https://warn.example/r\n" + extra
    )
    return load_policy(folder)


def test_redirect_mode_points_the_bad_link_at_the_signed_warning_page(tmp_path: Path) -> None:
    secret = _secret(tmp_path)
    policy = _redirect_policy(tmp_path, f"  redirect_secret_file: {secret}\n")
    out = delivered(verdict(MISMATCH), policy)
    plain, rich = parts(out)
    href = re.search(
        r'<a href="(https://warn\.example/r\?[^"]+)" title="hxxps://evil\[\.\]example/login">', rich
    )
    assert href is not None
    query = parse_qs(urlsplit(href.group(1).replace("&amp;", "&")).query)
    key = secret.read_bytes().strip()
    token = verify_link({k: v[0] for k, v in query.items()}, [key])
    assert token.url == "https://evil.example/login"
    assert "allez sur hxxps://evil[.]example/login" in plain  # written URLs: defanged
    assert "warn.example" not in plain
    # a second pass over our own output does not wrap the warning link again
    again = delivered(verdict(MISMATCH), policy, out)
    assert parts(again)[1].count("warn.example/r?") == 1
    assert unquote(parts(again)[1]) == unquote(rich)


def test_redirect_needs_url_and_secret_file(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "a.yaml").write_text("actions:\n  link_rewrite: redirect\n")
    with pytest.raises(PolicyInvalid) as info:
        load_policy(folder)
    assert any(
        "redirect needs redirect_url and redirect_secret_file" in str(e) for e in info.value.errors
    )


def test_signed_mail_gets_headers_and_subject_but_no_body_change(policy: Policy) -> None:
    raw = (
        b"From: a@shop.example\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; protocol="application/pgp-signature";\r\n'
        b' boundary="s"\r\n\r\n'
        b"--s\r\nContent-Type: text/plain\r\n\r\nGo to https://evil.example/login\r\n"
        b"--s\r\nContent-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n"
        b"--s--\r\n"
    )
    result = plan(verdict(MISMATCH), parse_message(raw), policy)
    assert result.new_body is None
    out = apply_plan(raw, result)
    assert b"Subject: [SUSPECT] hi" in out
    assert b"X-Tocsin-Verdict: v=1; verdict=tag" in out
    assert out.endswith(raw.split(b"\r\n\r\n", 1)[1])


def _dkim(domain: str, status: AuthStatus = AuthStatus.PASS) -> AuthResult:
    return AuthResult("dkim", status, "", {"header.d": domain, "header.s": "s1"})


def test_brand_mail_with_a_valid_brand_dkim_signature_is_left_untouched(policy: Policy) -> None:
    proven = verdict(MISMATCH, auth=(_dkim("mail.ameli.fr"),))
    proven = Verdict(
        Disposition.TAG, "ameli", 6.0, proven.findings, proven.reasons, proven.auth, TAG
    )
    result = plan(proven, parse_message(RAW), policy)
    assert result.new_body is None
    assert not any(e.name == "Subject" for e in result.header_edits)
    assert any(e.name == "X-Tocsin-Verdict" for e in result.header_edits)


@pytest.mark.parametrize(
    ("auth", "extra"),
    [
        ((_dkim("ameli-remboursement.fr"),), ()),  # signed, but not by the brand
        ((_dkim("ameli.fr", AuthStatus.FAIL),), ()),  # the brand's signature does not verify
        ((_dkim("ameli.fr"),), ("BRAND_AUTH_FAIL",)),  # the auth check says not proven
    ],
)
def test_unproven_brand_mail_is_still_rewritten(policy: Policy, auth, extra) -> None:
    findings = (MISMATCH, *(Finding(c, "auth", Severity.CRITICAL, c, "ameli", {}) for c in extra))
    v = Verdict(Disposition.TAG, "ameli", 6.0, findings, (), auth, TAG)
    assert plan(v, parse_message(RAW), policy).new_body is not None


@pytest.mark.parametrize(
    ("actions", "rewritten"),
    [
        (frozenset({"subject_tag"}), False),
        (frozenset(), False),
        (frozenset({"banner"}), True),
        (frozenset({"defang_links"}), True),
        (frozenset({"rewrite_links"}), True),
    ],
)
def test_the_body_is_read_only_for_a_banner_or_links(
    policy: Policy, monkeypatch: pytest.MonkeyPatch, actions: frozenset[str], rewritten: bool
) -> None:
    from milter.mime.spool import RawMessage

    mime = parse_message(RAW)
    reads: list[int] = []
    to_bytes = RawMessage.to_bytes

    def counted(self: RawMessage) -> bytes:
        reads.append(1)
        return to_bytes(self)

    monkeypatch.setattr(RawMessage, "to_bytes", counted)
    result = plan(verdict(MISMATCH, actions=actions), mime, policy)
    assert (result.new_body is not None) == rewritten
    assert bool(reads) == rewritten  # nothing to change: the (maybe spooled) body stays unread

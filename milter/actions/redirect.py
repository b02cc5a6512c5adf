"""Signed links to the warning page: the page is no open redirector, and a link expires
and names the recipients it was written for.

In redirect mode a suspicious ``href`` becomes::

    base_url?u=<original>&r=<recipients>&e=<expiry, unix time>&c=<codes>&s=<signature>

``u`` and ``r`` are urlsafe base64 without padding, ``c`` the finding codes that made the
link suspicious (comma-separated), ``s`` the first 32 hex digits of HMAC-SHA256 over all of
them. The key is ``actions.redirect_secret_file`` (read and checked with the policy, like
the quarantine's release key: a file only the admin controls, never in the policy dump).
The warning page (``milter.review.warning``) calls :func:`verify_link`; a link that is
unsigned, tampered with or expired never leads anywhere.

Recipient binding: one body goes to every envelope recipient of a message, so the token
binds the sorted, lower-cased list of them; a list longer than
:data:`RECIPIENTS_LIMIT` characters binds their domains instead (``@ville.fr``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from milter.actions.targets import targets_from_findings
from milter.model.findings import Finding, Severity

SIG_LEN = 32
DEFAULT_LIFETIME = timedelta(days=30)
RECIPIENTS_LIMIT = 320
MAX_REASONS = 3
_LABEL = "tocsin-link-1"  # the MAC covers the format, so another use of the key cannot collide
_MAX_FIELD = 8192


class LinkProblem(enum.StrEnum):
    """Why a warning-page link is refused."""

    INVALID = "invalid"  # missing, malformed, unsigned or tampered with
    EXPIRED = "expired"  # authentic but past its expiry
    WRONG_RECIPIENT = "wrong-recipient"  # authentic but written for someone else


@dataclass(frozen=True, slots=True)
class LinkToken:
    """What a verified link says: the original URL, when it expires (unix time), whom it
    was written for (``recipients``: addresses, or ``@domain`` entries) and why it was
    rewritten (finding codes)."""

    url: str
    expires: int
    recipients: tuple[str, ...]
    reasons: tuple[str, ...]

    def bound_to(self, recipient: str) -> bool:
        """True when ``recipient`` is one of the addresses (or domains) bound."""
        address = _normal(recipient)
        domain = "@" + address.rpartition("@")[2]
        return address in self.recipients or domain in self.recipients


class LinkRefused(ValueError):
    """A link the warning page must not follow; ``token`` is set when it was authentic
    (expired or for another recipient), so the page may still show where it went."""

    def __init__(self, problem: LinkProblem, token: LinkToken | None = None) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.token = token


def _normal(address: str) -> str:
    return address.strip().strip("<>").lower()


def recipient_binding(rcpts: Iterable[str]) -> tuple[str, ...]:
    """The sorted addresses, or their ``@domain`` forms when the list is too long."""
    addresses = sorted({_normal(r) for r in rcpts if _normal(r)})
    if len(",".join(addresses)) <= RECIPIENTS_LIMIT:
        return tuple(addresses)
    return tuple(sorted({"@" + a.rpartition("@")[2] for a in addresses}))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).rstrip(b"=").decode()


def _unb64(text: str) -> str:
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data.decode("utf-8", "surrogatepass")


def _sign(key: bytes, url: str, expires: int, rcpts: str, codes: str) -> str:
    text = "\n".join((_LABEL, url, str(expires), rcpts, codes))
    digest = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return digest.hexdigest()[:SIG_LEN]


def link_query(token: LinkToken, key: bytes) -> dict[str, str]:
    """The signed query parameters of ``token`` (``u``, ``r``, ``e``, ``c``, ``s``)."""
    rcpts = ",".join(token.recipients)
    codes = ",".join(token.reasons)
    return {
        "u": _b64(token.url),
        "r": _b64(rcpts),
        "e": str(token.expires),
        "c": codes,
        "s": _sign(key, token.url, token.expires, rcpts, codes),
    }


def redirect_url(token: LinkToken, base_url: str, key: bytes) -> str:
    """``base_url?u=…&r=…&e=…&c=…&s=…`` for ``token``."""
    query = urlencode(link_query(token, key))
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"


def _parse(query: Mapping[str, str], keys: Iterable[bytes]) -> LinkToken:
    fields = {name: query.get(name, "") for name in ("u", "r", "e", "c", "s")}
    if any(len(v) > _MAX_FIELD or not v.isascii() for v in fields.values()):
        raise LinkRefused(LinkProblem.INVALID)
    expiry, signature = fields["e"], fields["s"].lower()
    if not (expiry.isdigit() and len(expiry) <= 12 and len(signature) == SIG_LEN):
        raise LinkRefused(LinkProblem.INVALID)
    try:
        url, rcpts = _unb64(fields["u"]), _unb64(fields["r"])
    except (binascii.Error, ValueError):
        raise LinkRefused(LinkProblem.INVALID) from None
    expires, codes = int(expiry), fields["c"]
    if not url or not any(
        hmac.compare_digest(_sign(key, url, expires, rcpts, codes), signature) for key in keys
    ):
        raise LinkRefused(LinkProblem.INVALID)
    return LinkToken(
        url,
        expires,
        tuple(r for r in rcpts.split(",") if r),
        tuple(c for c in codes.split(",") if c),
    )


def verify_link(
    query: Mapping[str, str],
    keys: Iterable[bytes],
    *,
    now: datetime | None = None,
    recipient: str | None = None,
) -> LinkToken:
    """The token of a warning-page link's query, signed with one of ``keys``, unexpired,
    and (when ``recipient`` is given) written for that recipient.

    Raises LinkRefused (``token`` set for an authentic but expired or misdirected link).
    """
    token = _parse(query, keys)
    if token.expires < (now or datetime.now(UTC)).timestamp():
        raise LinkRefused(LinkProblem.EXPIRED, token)
    if recipient is not None and not token.bound_to(recipient):
        raise LinkRefused(LinkProblem.WRONG_RECIPIENT, token)
    return token


def main_codes(findings: Iterable[Finding], floor: Severity = Severity.MEDIUM) -> tuple[str, ...]:
    """The codes of the most severe findings (``floor`` and above), at most
    :data:`MAX_REASONS`."""
    ranked = sorted((f for f in findings if f.severity >= floor), key=lambda f: -f.severity)
    return tuple(dict.fromkeys(str(f.code) for f in ranked))[:MAX_REASONS]


@dataclass(frozen=True, slots=True)
class RedirectSigner:
    """Maps an original URL to its signed warning-page URL (``LinkRewrite.redirect``).

    A URL gets the codes of the findings whose link it is; any other rewritten link (every
    link of a message that failed to prove a brand) gets the message's main codes.
    """

    base_url: str
    key: bytes
    recipients: tuple[str, ...]
    expires: int
    findings: tuple[Finding, ...] = ()

    @classmethod
    def for_message(
        cls,
        base_url: str,
        key: bytes,
        rcpts: Iterable[str],
        findings: Iterable[Finding] = (),
        *,
        lifetime: timedelta = DEFAULT_LIFETIME,
        now: datetime | None = None,
    ) -> RedirectSigner:
        """A signer whose links expire ``lifetime`` after ``now`` and bind ``rcpts``."""
        expires = int(((now or datetime.now(UTC)) + lifetime).timestamp())
        return cls(base_url, key, recipient_binding(rcpts), expires, tuple(findings))

    def reasons(self, url: str) -> tuple[str, ...]:
        """Why ``url`` was rewritten: its own findings' codes, else the message's."""
        own = [f for f in self.findings if f.link is not None]
        mine = [f for f in own if targets_from_findings([f]).url_matches(url)]
        return main_codes(mine, Severity.INFO) or main_codes(self.findings)

    def __call__(self, original: str) -> str:
        token = LinkToken(original, self.expires, self.recipients, self.reasons(original))
        return redirect_url(token, self.base_url, self.key)

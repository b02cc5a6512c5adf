"""The policy schema: closed, typed, bounded — and the reference ``docs/policy.md`` follows.

Pydantic (frozen models, ``extra="forbid"``) validates the merged YAML data and reports
every error at once with its location, which the loader maps back to file and line.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from milter.model.verdict import Disposition

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def check_domain(value: str) -> str:
    """Normalise a domain name (lower case, IDNA to A-labels) or raise ValueError."""
    name = value.strip().rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise ValueError(f"{value!r} is not a domain name ({exc})") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        raise ValueError(f"{value!r} is not a domain name")
    if labels[-1].isascii() and labels[-1].isdigit():
        raise ValueError(f"{value!r} is an address, not a domain name")
    return ascii_name


MIN_SECRET_BYTES = 32
MAX_SECRET_BYTES = 4096


def read_secret(path: Path) -> bytes:
    """The secret in ``path`` (surrounding whitespace removed), or raise ValueError."""
    try:
        data = path.read_bytes()[: MAX_SECRET_BYTES + 1].strip()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if not MIN_SECRET_BYTES <= len(data) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"{path} holds {len(data)} bytes; a secret needs {MIN_SECRET_BYTES} to "
            f"{MAX_SECRET_BYTES} (e.g. head -c 48 /dev/urandom | base64 > {path})"
        )
    return data


def _git_work_tree(path: Path) -> Path | None:
    for folder in path.resolve().parents:
        if (folder / ".git").exists():
            return folder
    return None


def check_secret_file(path: Path) -> Path:
    """A secret file an admin controls: absolute, a regular file, no access for other
    users, outside any git work tree (policies are often versioned; secrets must not be).
    """
    if not path.is_absolute():
        raise ValueError(f"{str(path)!r} must be an absolute path")
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")
    if mode & 0o007:
        raise ValueError(f"{path} is open to every user (mode {mode & 0o777:o}); chmod o-rwx it")
    repo = _git_work_tree(path)
    if repo is not None:
        raise ValueError(f"{path} lies inside the git work tree {repo}; keep secrets out of it")
    read_secret(path)
    return path


Domain = Annotated[str, AfterValidator(check_domain)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Severity = Literal["info", "low", "medium", "high", "critical"]
Action = Literal["banner", "defang_links", "rewrite_links", "subject_tag"]
Lang = Literal["fr", "en"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Advice(_Closed):
    """The brand's own advice, shown in the banner."""

    fr: Text
    en: Text


class FrenchName(_Closed):
    """A brand's name in French sentences, with its article: ``le`` ("l'Assurance Maladie",
    "le CPF") and ``de`` ("de l'Assurance Maladie", "du CPF")."""

    le: Text
    de: Text


class Brand(_Closed):
    """A protected brand: what is official, what it is called, what it never asks for."""

    name: Text
    fr: FrenchName | None = None
    domains: tuple[Domain, ...] = Field(min_length=1)
    sending_domains: tuple[Domain, ...] = ()
    dkim_domains: tuple[Domain, ...] = ()
    names: tuple[Text, ...] = Field(min_length=1)
    tokens: tuple[Annotated[str, Field(pattern=r"^[a-z0-9-]{2,40}$")], ...] = ()
    phones: tuple[Annotated[str, Field(pattern=r"^\+?[0-9 .]{3,20}$")], ...] = ()
    never_asks: tuple[str, ...] = ()
    strict: bool = True
    advice: Advice | None = None


class Condition(_Closed):
    """When a rule matches. All given fields must hold."""

    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    min_severity: Severity | None = None
    brand_claimed: bool | None = None
    min_score: float | None = Field(default=None, ge=0, le=1000)

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not (self.any or self.all or self.min_severity or self.min_score is not None):
            raise ValueError("a condition needs at least one of any, all, min_severity, min_score")
        return self


class Rule(_Closed):
    """First matching rule wins: its disposition and extra actions apply."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    when: Condition
    verdict: Disposition
    actions: tuple[Action, ...] = ()
    description: str = ""
    monitor: bool = False  # compute, log and count this rule's verdict; deliver unchanged


class Thresholds(_Closed):
    """Score fallback when no rule matched; ``null`` disables a level."""

    tag: float | None = Field(default=3.0, ge=0, le=1000)
    quarantine: float | None = Field(default=10.0, ge=0, le=1000)
    reject: float | None = Field(default=None, ge=0, le=1000)


def _default_severity_scores() -> dict[Severity, float]:
    return {"info": 0.0, "low": 1.0, "medium": 3.0, "high": 6.0, "critical": 10.0}


class Scoring(_Closed):
    """Scores per severity, and per finding code where a code deserves its own."""

    severity: dict[Severity, float] = Field(default_factory=_default_severity_scores)
    codes: dict[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")], float] = Field(
        default_factory=dict
    )
    thresholds: Thresholds = Thresholds()


class Replies(_Closed):
    """SMTP replies for reject and tempfail."""

    reject: Annotated[str, Field(pattern=r"^5[0-9][0-9] 5\.[0-9]{1,3}\.[0-9]{1,3} [^\r\n]+$")] = (
        "550 5.7.1 Message refused: impersonation of a protected sender"
    )
    tempfail: Annotated[str, Field(pattern=r"^4[0-9][0-9] 4\.[0-9]{1,3}\.[0-9]{1,3} [^\r\n]+$")] = (
        "451 4.7.1 Message could not be verified, try again later"
    )


class Actions(_Closed):
    """How each disposition is carried out."""

    tag: tuple[Action, ...] = ("banner", "defang_links", "subject_tag")
    quarantine_store: Literal["store", "hold"] = "store"
    subject_tag: Annotated[str, Field(min_length=1, max_length=40)] = "[SUSPECT]"
    verdict_header: Annotated[str, Field(pattern=r"^X-[A-Za-z0-9-]{1,60}$")] = "X-Tocsin-Verdict"
    banner_languages: tuple[Lang, ...] = Field(default=("fr", "en"), min_length=1)
    link_rewrite: Literal["defang", "redirect"] = "defang"
    unproven_brand_links: Literal["all", "suspicious"] = "all"
    redirect_url: Annotated[str, Field(pattern=r"^https://[^/?#\s]+\S*$")] | None = None
    redirect_secret_file: Annotated[Path, AfterValidator(check_secret_file)] | None = None
    redirect_lifetime_days: Annotated[int, Field(ge=1, le=366)] = 30
    replies: Replies = Replies()
    _redirect_key: bytes | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _redirect_ready(self) -> Actions:
        if self.link_rewrite == "redirect":
            missing = [
                name
                for name in ("redirect_url", "redirect_secret_file")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"link_rewrite: redirect needs {' and '.join(missing)}")
        if self.redirect_secret_file is not None:
            self._redirect_key = read_secret(self.redirect_secret_file)
        return self

    @property
    def redirect_key(self) -> bytes | None:
        """The HMAC key read from ``redirect_secret_file`` when the policy was loaded.

        Never part of the dumped policy (``tocsin policy show``); a reload re-reads it.
        """
        return self._redirect_key


class Authentication(_Closed):
    """Sender authentication settings."""

    authserv_id: Domain = "tocsin.invalid"
    trusted_authserv_ids: tuple[Domain, ...] = ()
    trusted_arc_sealers: tuple[Domain, ...] = ()
    org_domain_mode: Literal["treewalk", "psl"] = "treewalk"


class Limits(_Closed):
    """Bounds on what one message may cost."""

    check_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    dns_budget_seconds: float = Field(default=8.0, gt=0, le=120)
    max_links: int = Field(default=2000, ge=10, le=100_000)
    max_parts: int = Field(default=500, ge=10, le=10_000)
    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=64 * 1024, le=1024**3)
    # Above max_message_bytes: "scan" the first max_message_bytes (LIMIT_EXCEEDED, limit
    # "size"), or "tempfail"/"reject" unscanned; "accept" (unscanned) is the old bypass,
    # kept only so existing policies load (docs/policy.md).
    oversize: Literal["scan", "tempfail", "reject", "accept"] = "scan"
    max_headers: int = Field(default=1000, ge=50, le=100_000)
    max_depth: int = Field(default=20, ge=5, le=1000)
    # What a message past a limit gets (docs/policy.md "Limits"): "scan" decides on what
    # fits (a LIMIT_EXCEEDED finding says which limit); "tempfail"/"reject" refuse it.
    # Unnamed limits scan, except "work" (the per-scan budget): tempfail (DEFAULT_ON_LIMIT).
    # A limit is never a bypass: there is no "accept unscanned".
    on_limit: dict[
        Literal["headers", "depth", "parts", "text", "links", "work"],
        Literal["scan", "tempfail", "reject"],
    ] = Field(default_factory=dict)


class AllowEntry(_Closed):
    """One allowlist entry; every entry says why it exists."""

    reason: Annotated[str, Field(min_length=3, max_length=500)]
    from_domain: Domain | None = None
    mail_from_domain: Domain | None = None
    client_ip: Annotated[str, Field(pattern=r"^[0-9a-fA-F:.]+(/[0-9]{1,3})?$")] | None = None
    codes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_selector(self) -> AllowEntry:
        if not (self.from_domain or self.mail_from_domain or self.client_ip):
            raise ValueError("an allowlist entry needs from_domain, mail_from_domain or client_ip")
        return self


class PhraseSet(_Closed):
    """Phrases (matched accent- and case-insensitively) revealing a kind of request."""

    severity: Severity = "medium"
    label: Text
    fr: tuple[Text, ...] = ()
    en: tuple[Text, ...] = ()


class BannerTexts(_Closed):
    """Banner template strings for one language; ``{brand}`` etc. are filled in.

    ``reasons`` maps a finding code to its sentence, whose placeholders are the code's
    evidence keys and ``{brand}``, ``{brand_le}``, ``{brand_de}`` (checked at load time).
    """

    title: Text
    intro_brand: Text
    intro_generic: Text
    reasons_heading: Text
    footer: Text
    what_to_do: Text | None = None
    canvassing_title: Text | None = None
    canvassing_intro: Text | None = None
    canvassing_footer: Text | None = None
    reasons: dict[str, Text] = Field(default_factory=dict)


class RecipientOverride(_Closed):
    """Settings that differ for one recipient domain."""

    scoring: Scoring | None = None
    actions: Actions | None = None
    rules: tuple[Rule, ...] | None = None


class PolicyDocument(_Closed):
    """The whole policy after merging the shipped defaults and the admin's files."""

    version: Literal[1] = 1
    brands: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")], Brand]
    rules: tuple[Rule, ...] = ()
    scoring: Scoring = Scoring()
    actions: Actions = Actions()
    authentication: Authentication = Authentication()
    limits: Limits = Limits()
    allowlist: tuple[AllowEntry, ...] = ()
    phrases: dict[str, PhraseSet] = Field(default_factory=dict)
    banners: dict[Lang, BannerTexts]
    recipient_domains: dict[Domain, RecipientOverride] = Field(default_factory=dict)
    # Monitor mode for the whole policy: every verdict is computed, logged, counted and
    # written in the verdict header as would=…, and the mail is delivered unchanged.
    monitor: bool = False

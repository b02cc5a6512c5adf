"""Daemon settings (``tocsin serve --config FILE``): where to listen and how to behave.

Detection policy lives in the policy directory; this file holds what is about the
process: the socket, workers, limits a peer could abuse, timeouts, DNS servers and the
quarantine directory. Errors name the file, the line and the key, like policy errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from milter.frontends.listen import DEFAULT_LISTEN, ListenError, parse_endpoint, parse_listen
from milter.policy.errors import PolicyError, PolicyInvalid
from milter.policy.loader import validation_errors
from milter.policy.source import SourceTree, load_file, merge_into

DEFAULT_QUARANTINE_DIR = Path("/var/lib/tocsin/quarantine")
DEFAULT_REVIEW_USERS = Path("/etc/tocsin/review-users")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MilterSettings(_Closed):
    """The milter listener and the limits on what a connecting MTA controls."""

    enabled: bool = True
    listen: str = DEFAULT_LISTEN
    workers: int = Field(default=1, ge=1, le=64)
    max_connections: int = Field(default=256, ge=1, le=100_000)
    # MTA sessions per SMTP client address (the connect macro); more get 421 at connect,
    # so one client opening many SMTP sessions cannot fill max_connections. 0: no cap.
    max_connections_per_client: int = Field(default=32, ge=0, le=100_000)
    idle_timeout_seconds: float = Field(default=600.0, gt=0, le=86_400)
    eom_deadline_seconds: float = Field(default=60.0, gt=0, le=3_600)
    progress_interval_seconds: float = Field(default=5.0, gt=0, le=300)
    on_failure: Literal["tempfail", "accept"] = "tempfail"
    drain_seconds: float = Field(default=30.0, ge=0, le=3_600)
    max_frame_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    # Slow clients (#17): from MAIL FROM to the end of the message, at most
    # message_seconds, and after slow_grace_seconds at least min_bytes_per_second on
    # average; past either, the message gets a 4xx and the connection is closed.
    message_seconds: float = Field(default=900.0, gt=0, le=86_400)
    min_bytes_per_second: float = Field(default=128.0, ge=0, le=1024**3)
    slow_grace_seconds: float = Field(default=30.0, ge=0, le=3_600)
    max_headers: int = Field(default=1000, ge=10, le=100_000)
    max_header_bytes: int = Field(default=1024 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    socket_mode: Annotated[str, Field(pattern=r"^0?[0-7]{3}$")] = "660"
    # Postfix and Sendmail both add their own Received: header and hide it from milters;
    # INSHEADER indexes count it, so the front-end shifts the engine's indexes by one.
    mta_hides_received: bool = True

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        try:
            parse_listen(value)
        except ListenError as exc:
            raise ValueError(str(exc)) from None
        return value


def _valid_endpoint(value: str) -> str:
    try:
        parse_endpoint(value)
    except ListenError as exc:
        raise ValueError(str(exc)) from None
    return value


class SmtpSettings(_Closed):
    """The SMTP filter: where it listens, its next hop, and the limits on a client.

    Defaults fit Postfix's ``content_filter`` and ``smtpd_proxy_filter`` wirings
    (docs/smtp-filter.md): ``deadline_seconds`` stays under ``smtpd_proxy_timeout``
    (100 s), so Postfix hears our 451 rather than timing out itself.
    """

    enabled: bool = False
    listen: str = "127.0.0.1:10025"
    next_hop: str = "127.0.0.1:10026"
    next_hop_starttls: Literal["no", "opportunistic", "required"] = "no"
    next_hop_timeout_seconds: float = Field(default=60.0, gt=0, le=3_600)
    # Sessions with the next hop kept open between transactions, per worker (each saves
    # connect, EHLO and QUIT per message), and for how long one may stay unused. 0: a
    # new session per transaction.
    next_hop_sessions: int = Field(default=8, ge=0, le=1_000)
    next_hop_idle_seconds: float = Field(default=60.0, gt=0, le=3_600)
    # A kept session serves at most this many transactions, and none past this age from
    # its connect (Postfix's smtp_connection_reuse_count_limit / _time_limit). One the
    # next hop refused anything on (4xx/5xx) is never kept: its smtpd counts errors.
    next_hop_session_transactions: int = Field(default=100, ge=1, le=100_000)
    next_hop_session_seconds: float = Field(default=300.0, gt=0, le=86_400)
    xforward: bool = True  # pass the real client on to a next hop offering XFORWARD
    hostname: str | None = None  # our EHLO/banner name; the system's FQDN when unset
    workers: int = Field(default=1, ge=1, le=64)
    max_connections: int = Field(default=100, ge=1, le=100_000)
    # Connections per client: counted by peer address, except for trusted_clients (the
    # MTA in front), whose transactions count for the client they forward (XFORWARD
    # ADDR). More get 421. 0: no cap.
    max_connections_per_client: int = Field(default=20, ge=0, le=100_000)
    trusted_clients: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    idle_timeout_seconds: float = Field(default=300.0, gt=0, le=86_400)
    transaction_seconds: float = Field(default=900.0, gt=0, le=86_400)
    # Slow clients: from MAIL FROM to the final dot, after slow_grace_seconds at least
    # min_bytes_per_second on average; past it: 421 and close.
    min_bytes_per_second: float = Field(default=128.0, ge=0, le=1024**3)
    slow_grace_seconds: float = Field(default=30.0, ge=0, le=3_600)
    deadline_seconds: float = Field(default=90.0, gt=0, le=3_600)
    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024, le=2**31)
    max_line_bytes: int = Field(default=1024 * 1024, ge=1001, le=64 * 1024 * 1024)
    max_recipients: int = Field(default=1000, ge=1, le=100_000)
    on_failure: Literal["tempfail", "accept"] = "tempfail"
    drain_seconds: float = Field(default=30.0, ge=0, le=3_600)

    @field_validator("listen", "next_hop")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        return _valid_endpoint(value)

    @field_validator("trusted_clients")
    @classmethod
    def _valid_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value


class QuarantineSettings(_Closed):
    """Tocsin's own quarantine store (used when the policy says ``quarantine_store: store``)."""

    directory: Path = DEFAULT_QUARANTINE_DIR
    relay: Annotated[str, Field(pattern=r"^[^\s:]+:[0-9]{1,5}$")] = "127.0.0.1:10026"
    # Shared store for several gateways (docs/shared-quarantine.md): when set, held mail
    # goes to this PostgreSQL database instead of ``directory``.
    database: str | None = None
    database_password_file: Path | None = None
    database_pool_size: int = Field(default=4, ge=1, le=64)
    database_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    gateway: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @field_validator("database")
    @classmethod
    def _valid_database(cls, value: str | None) -> str | None:
        from milter.quarantine.postgres_config import check_settings_dsn

        return None if value is None else check_settings_dsn(value)

    @field_validator("database_password_file")
    @classmethod
    def _valid_password_file(cls, value: Path | None) -> Path | None:
        from milter.quarantine.postgres_config import check_password_file

        return None if value is None else check_password_file(value)


class SpoolSettings(_Closed):
    """Where large messages go while they are scanned (docs/performance.md "Memory")."""

    directory: Path | None = None  # None: the system's temporary directory ($TMPDIR)
    threshold_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024, le=1024**3)
    large_scans: int = Field(default=1, ge=1, le=64)  # spooled messages scanned at once
    # messages held in memory by one worker, in all; past it even small ones are spooled
    memory_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024, le=64 * 1024**3)


class LogSettings(_Closed):
    """How Tocsin logs: one line per message, key=value text or JSON (operations-logs.md)."""

    format: Literal["text", "json"] = "text"
    target: Literal["stderr", "syslog"] = "stderr"
    syslog_address: str = "/dev/log"  # a socket path, or HOST:PORT (UDP)


class MetricsSettings(_Closed):
    """The Prometheus /metrics and /health endpoint (operations-metrics.md); off when unset."""

    listen: str | None = None  # e.g. 127.0.0.1:9464

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str | None) -> str | None:
        from milter.ops.http import parse_address

        if value is not None:
            parse_address(value)  # MetricsAddressError is a ValueError: reported with the key
        return value


class ReviewSettings(_Closed):
    """The review web page (``tocsin review``): a separate process, loopback by default."""

    listen: Annotated[str, Field(pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):[0-9]{1,5}$")] = (
        "127.0.0.1:8895"
    )
    users: dict[str, str] | None = None
    users_file: Path | None = DEFAULT_REVIEW_USERS
    allowlist_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_https_proxy: bool = False
    session_hours: float = Field(default=8.0, gt=0, le=720)
    language: Literal["fr", "en"] = "fr"


class ServeSettings(_Closed):
    """Everything ``tocsin serve`` reads from its settings file."""

    milter: MilterSettings = MilterSettings()
    smtp: SmtpSettings = SmtpSettings()
    policy_dir: Path | None = None
    nameservers: tuple[str, ...] = ()
    dns_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    quarantine: QuarantineSettings = QuarantineSettings()
    spool: SpoolSettings = SpoolSettings()
    review: ReviewSettings = ReviewSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    pid_file: Path | None = None  # for tocsin reload / tocsin status
    # A worker whose event loop has not turned for this long (a scan stuck where no
    # deadline reaches it) is killed and replaced; the MTA tempfails what it held.
    # 0: no watchdog (and one worker then runs in the main process).
    worker_stall_seconds: float = Field(default=30.0, ge=0, le=3_600)
    watch_policy: bool = True  # reload when a file of policy_dir changes

    @property
    def workers(self) -> int:
        """Worker processes: each serves every enabled front-end."""
        counts = [s.workers for s in (self.milter, self.smtp) if s.enabled]
        return max(counts, default=1)


def load_settings(path: Path | None) -> ServeSettings:
    """Read ``path`` (defaults only when None); raise PolicyInvalid listing every error."""
    if path is None:
        return ServeSettings()
    errors: list[PolicyError] = []
    data, origins = load_file(path, str(path), errors)
    if errors:
        raise PolicyInvalid(errors)
    tree = SourceTree(files=[str(path)])
    merge_into(tree, data, origins)
    try:
        return ServeSettings.model_validate(tree.data)
    except ValidationError as exc:
        raise PolicyInvalid(validation_errors(exc, tree)) from None

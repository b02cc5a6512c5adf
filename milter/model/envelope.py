"""The SMTP envelope handed to the engine by a front-end (or by ``tocsin scan`` options)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the MTA knows about a message besides its bytes.

    Attributes:
        client_ip: connecting client's address, or None when unknown (offline scan).
        client_name: reverse name the MTA found for the client ("unknown" if none).
        helo: HELO/EHLO name.
        mail_from: reverse path without brackets ("" for the null sender).
        rcpts: recipients without brackets.
        queue_id: MTA queue id when known (for logs and quarantine).
        macros: other MTA macros, for logging only.
    """

    client_ip: str | None = None
    client_name: str | None = None
    helo: str | None = None
    mail_from: str | None = None
    rcpts: tuple[str, ...] = ()
    queue_id: str | None = None
    macros: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rcpts", tuple(self.rcpts))
        object.__setattr__(self, "macros", MappingProxyType(dict(self.macros)))

    @property
    def mail_from_domain(self) -> str | None:
        """Domain part of MAIL FROM, lower-cased, or None for the null sender."""
        if not self.mail_from or "@" not in self.mail_from:
            return None
        return self.mail_from.rsplit("@", 1)[1].lower().rstrip(".") or None

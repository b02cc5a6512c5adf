"""Option negotiation: what we ask for versus what the MTA offers.

The flag types live in `flags.py` and are re-exported here. `negotiate()` is a pure
function from the MTA's `OptNeg` offer and our `NegotiationRequest` to the
`OptNegReply` to send; it never asks for more than was offered (both Sendmail and
Postfix refuse extra action bits, Sendmail also extra protocol bits).
"""

from dataclasses import dataclass, field
from types import MappingProxyType

from .commands import OptNeg
from .errors import RemoteProtocolError
from .flags import (
    ALL_ACTIONS,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    ActionFlag,
    MacroStage,
    ProtocolFlag,
    protocol_mask,
)
from .replies import MacroLists, OptNegReply

__all__ = [
    "ALL_ACTIONS",
    "DEFAULT_ACTIONS",
    "MIN_PROTOCOL_VERSION",
    "PROTOCOL_VERSION",
    "ActionFlag",
    "MacroStage",
    "NegotiationRequest",
    "ProtocolFlag",
    "check_offer",
    "negotiate",
    "protocol_mask",
]

DEFAULT_ACTIONS = (
    ActionFlag.ADDHDRS | ActionFlag.CHGBODY | ActionFlag.CHGHDRS | ActionFlag.QUARANTINE
)
"""What Tocsin needs: add/insert/change headers, replace body, quarantine (0x33)."""


@dataclass(frozen=True)
class NegotiationRequest:
    """What the milter would like: actions, protocol bits and per-stage macro lists."""

    actions: ActionFlag = DEFAULT_ACTIONS
    protocol: ProtocolFlag = ProtocolFlag.NONE
    macros: MacroLists = field(default_factory=dict, hash=False)
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "macros", MappingProxyType(dict(self.macros)))


def check_offer(offer: OptNeg) -> None:
    """Raise `RemoteProtocolError` for an offer we cannot work with (version < 2)."""
    if offer.version < MIN_PROTOCOL_VERSION:
        raise RemoteProtocolError(f"MTA offers milter protocol version {offer.version} (< 2)")


def negotiate(offer: OptNeg, request: NegotiationRequest | None = None) -> OptNegReply:
    """Compute the OPTNEG reply: the requested bits that the MTA offered, at a shared version.

    With an older MTA (version < 6) the reply carries its version and only the protocol
    bits that exist there; macro lists are sent only if the MTA offers SETSYMLIST.
    """
    request = request or NegotiationRequest()
    check_offer(offer)
    version = max(MIN_PROTOCOL_VERSION, min(request.version, offer.version, PROTOCOL_VERSION))
    protocol = request.protocol & offer.protocol & protocol_mask(version)
    actions = request.actions & offer.actions & ~ActionFlag.SETSYMLIST
    macros: MacroLists = {}
    if request.macros and ActionFlag.SETSYMLIST in offer.actions:
        actions |= ActionFlag.SETSYMLIST
        macros = request.macros
    return OptNegReply(version, ActionFlag(actions), ProtocolFlag(protocol), macros)

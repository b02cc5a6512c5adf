"""Macro bookkeeping: values announced per command, and the cumulative view libmilter offers."""

from collections.abc import Mapping
from types import MappingProxyType

from .commands import Macro

_ORDER = b"CHMRTLNBE"  # connection level first, then the message transaction in order
_MESSAGE_LEVEL = b"MRTLNBE"
_EMPTY: Mapping[str, str] = MappingProxyType({})


def lookup(macros: Mapping[str, str], name: str) -> str | None:
    """Find a macro by name, with or without braces: ``"i"``, ``"{auth_authen}"``."""
    bare = name[1:-1] if name.startswith("{") and name.endswith("}") else name
    for key in (name, bare, f"{{{bare}}}"):
        if key in macros:
            return macros[key]
    return None


class MacroStore:
    """Macros by command code: pending ones wait for their command; layers persist.

    Storing a layer clears every later layer (a new MAIL forgets the previous
    message's RCPT/DATA/... macros); ABORT clears the message-level layers and
    QUIT_NC clears everything.
    """

    def __init__(self) -> None:
        self._layers: dict[int, Mapping[str, str]] = {}
        self._pending: dict[int, Mapping[str, str]] = {}

    def store(self, macro: Macro) -> None:
        """Record an SMFIC_MACRO packet."""
        code = macro.command[0]
        if code in _ORDER:
            for later in _ORDER[_ORDER.index(code) + 1 :]:
                self._layers.pop(later, None)
        self._layers[code] = macro.values
        self._pending[code] = macro.values

    def pending(self, code: bytes) -> Mapping[str, str]:
        """Macros announced for the command `code` (empty for a macro packet itself)."""
        if code == Macro.CODE:
            return _EMPTY
        return self._pending.get(code[0], _EMPTY) if self._pending else _EMPTY

    def take(self, code: bytes) -> Mapping[str, str]:
        """Macros announced for the command `code`; forget other pending announcements."""
        values = self._pending.get(code[0], _EMPTY)
        self._pending.clear()
        return values

    def abort(self) -> None:
        """Drop message-level macros."""
        for code in _MESSAGE_LEVEL:
            self._layers.pop(code, None)
        self._pending.clear()

    def reset(self) -> None:
        """Drop everything (QUIT_NC)."""
        self._layers.clear()
        self._pending.clear()

    def merged(self) -> dict[str, str]:
        """All macros currently in scope; later stages override earlier ones."""
        result: dict[str, str] = {}
        for code in b"U" + _ORDER:
            result.update(self._layers.get(code, _EMPTY))
        return result

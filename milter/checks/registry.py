"""The checks Tocsin runs, listed explicitly: greppable, typed, ordered."""

from __future__ import annotations

import functools

from milter.checks.auth import AuthCheck
from milter.checks.base import Check
from milter.checks.brand import BrandClaimCheck
from milter.checks.canvassing import CanvassingCheck
from milter.checks.defects import DefectsCheck
from milter.checks.links import LinksCheck
from milter.checks.phones import PhonesCheck
from milter.checks.phrases import PhrasesCheck
from milter.checks.sender import SenderCheck


@functools.cache
def default_checks() -> tuple[Check, ...]:
    """All checks, run concurrently by the engine. Made once: a check holds no state
    (what it works out for one message lives in that run's locals)."""
    return (
        AuthCheck(),
        DefectsCheck(),
        LinksCheck(),
        BrandClaimCheck(),
        SenderCheck(),
        PhrasesCheck(),
        PhonesCheck(),
        CanvassingCheck(),
    )

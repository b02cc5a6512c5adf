"""Callback numbers in the text that are not the claimed brand's official ones."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from milter.checks.base import CheckContext
from milter.model.codes import Code
from milter.model.findings import Finding, Severity

NAME = "phones"
# French numbers: 0X XX XX XX XX / +33 X XX XX XX XX, and 4-digit short numbers (36 46).
# Written to start with the character class [+03] (every number starts with one of them):
# the regex engine then skips every other character in C, which a leading lookahead does
# not allow; each branch checks, behind that first character, what came before it
# (``(?<![\d+].)`` is "the character before the number is not a digit or +"). Same
# matches as the plain pattern (tests/checks/test_phone_pattern.py); 0.11 -> 0.03 ms per
# brand mail body of ~15 KB against the previous version, which began with (?=[+03]).
_PHONE = re.compile(
    r"[+03](?:"
    r"(?<=\+)(?<![\d+].)33[\s.-]?[1-9](?:[\s.-]?\d{2}){4}(?!\d)"
    r"|(?<=0)(?<![\d+].)(?:033[\s.-]?[1-9]|[1-9])(?:[\s.-]?\d{2}){4}(?!\d)"
    r"|(?<=3)(?<![\d,.].)\d[\s.]?\d{2}(?![\d,.%€]))"
)
# The same three branches, each its own pattern led by its literal first character: the
# regex engine finds a literal with a tight loop, where a character class costs a call per
# character of the text (a third of the instructions). _numbers merges their matches.
_BRANCHES = tuple(
    re.compile(first + branch)
    for first, branch in (
        (r"\+", r"(?<![\d+].)33[\s.-]?[1-9](?:[\s.-]?\d{2}){4}(?!\d)"),
        ("0", r"(?<![\d+].)(?:033[\s.-]?[1-9]|[1-9])(?:[\s.-]?\d{2}){4}(?!\d)"),
        ("3", r"(?<![\d,.].)\d[\s.]?\d{2}(?![\d,.%€])"),
    )
)
_MERGED = 16  # matches merged in Python; past them, _PHONE reads the rest in C
_PREMIUM = re.compile(r"^08[9]")
_NON_DIGIT = re.compile(r"\D")


def _numbers(text: str) -> Iterator[str]:
    """The numbers ``_PHONE.finditer(text)`` finds, in order. Each branch is searched on
    its own; the next match of the whole pattern from a position is the earliest of the
    branches' next matches (one branch per first character), and a branch's match that
    the previous number overlapped is searched again from that number's end."""
    searches = [branch.search for branch in _BRANCHES]
    ahead = [search(text) for search in searches]
    end = 0
    for _ in range(_MERGED):
        best = None
        for index, cached in enumerate(ahead):
            found = cached
            if found is not None and found.start() < end:
                found = ahead[index] = searches[index](text, end)
            if found is not None and (best is None or found.start() < best.start()):
                best = found
        if best is None:
            return
        yield best.group()
        end = best.end()
    for match in _PHONE.finditer(text, end):
        yield match.group()


def _digits(number: str) -> str:
    digits = _NON_DIGIT.sub("", number)
    return "0" + digits[2:] if digits.startswith("33") and len(digits) == 11 else digits


class PhonesCheck:
    """Phone numbers in a brand-claiming message that the brand does not publish."""

    name = NAME
    awaits_io = False  # CPU only: the engine runs it inline

    async def run(self, ctx: CheckContext) -> Sequence[Finding]:
        """At most one finding, listing up to five foreign numbers."""
        if ctx.claim is None:
            return ()
        brand = ctx.policy.brand(ctx.claim.brand)
        if not brand.phones:
            return ()
        official = {_digits(p) for p in brand.phones}
        found = {_digits(number) for number in _numbers(ctx.mime.all_text)}
        foreign = sorted(n for n in found - official if len(n) == 10)
        if not foreign:
            return ()
        premium = any(_PREMIUM.match(n) for n in foreign)
        return (
            Finding(
                Code.PHONE_NOT_OFFICIAL,
                NAME,
                Severity.HIGH if premium else Severity.MEDIUM,
                f"gives {', '.join(foreign[:5])} to call, but {brand.name} is reached only at "
                f"{', '.join(brand.phones[:1])}",
                ctx.claim.brand,
                {"numbers": ", ".join(foreign[:5]), "official": ", ".join(brand.phones)},
            ),
        )

"""A large HTML part's link events are streamed from the tokenizer; the reader's ``stop``
(the scan's work budget) is asked as the stream goes, by characters read, so a part of a
few heavy tags cannot run seconds past a spent budget between the link scan's own checks
(every 256 events)."""

from __future__ import annotations

import pytest

from milter.links import _html
from milter.model.budget import WorkBudgetExceeded
from milter.text.html import tokens
from milter.text.html_view import _KEPT_CHARS, events_of, link_events

_TAG_CHARS = 20_000


def _heavy_tag(i: int) -> str:
    """One link tag of ~_TAG_CHARS characters (many attributes)."""
    attrs = "".join(f' data-{n}="v{n}"' for n in range(_TAG_CHARS // 12))
    return f'<a href="https://x{i}.example.fr/"{attrs}>t{i}</a>'


def _doc(tags: int, wrap: tuple[str, str] = ("", "")) -> str:
    doc = wrap[0] + "".join(_heavy_tag(i) for i in range(tags)) + wrap[1]
    assert len(doc) > _KEPT_CHARS  # the streamed path, not the kept view
    return doc


class _StopAfter:
    """A ``stop`` that answers True from its ``calls``-th question on."""

    def __init__(self, calls: int) -> None:
        self.limit, self.asked = calls, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked >= self.limit


def test_without_stop_the_stream_is_every_link_event() -> None:
    doc = _doc(40)
    events = list(events_of(doc))
    assert events == list(link_events(tokens(doc)))
    assert sum(1 for event in events if not isinstance(event, str) and event[0] == "a") == 80


def test_a_stop_that_never_says_stop_changes_nothing() -> None:
    doc = _doc(40)
    stop = _StopAfter(10**9)
    assert list(events_of(doc, stop)) == list(events_of(doc))
    # asked at the first token and about every 32 KB of the ~800 KB read after it
    assert 20 <= stop.asked <= 30


def test_a_streamed_part_ends_within_one_check_of_a_stop() -> None:
    doc = _doc(40)
    full = list(events_of(doc))
    stop = _StopAfter(3)  # the first check passes, the third says stop
    cut = list(events_of(doc, stop))
    assert stop.asked == 3
    assert cut == full[: len(cut)]
    # two checks 32 KB apart, then one more tag started: ~4 tags of 20 KB, not all 40
    assert 0 < len(cut) <= 4 * 3


def test_tokens_inside_a_conditional_comment_are_checked_too() -> None:
    """Tokens inside an Outlook conditional comment follow the comment's own token, so
    offsets alone would not move past it: what is read is counted, not where."""
    doc = _doc(40, ("<!--[if mso]>", "<![endif]-->"))
    full = list(events_of(doc))
    assert len(full) > 100
    stop = _StopAfter(3)
    cut = list(events_of(doc, stop))
    assert stop.asked == 3
    assert len(cut) <= 4 * 3


def test_the_link_scan_of_a_cut_stream_raises_at_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``scan_html`` does not take a cut stream for a whole part: the budget is checked
    again when the stream ends, and the scan stops as at any other checkpoint."""
    stop = _StopAfter(3)

    def checkpoint(where: str) -> None:
        if stop.asked >= stop.limit:
            raise WorkBudgetExceeded(where)

    monkeypatch.setattr(_html, "spent", stop)
    monkeypatch.setattr(_html, "checkpoint", checkpoint)
    taken: list[str] = []

    class Sink:
        def take(self, url: str, source: str, base: str, anchor: str = "") -> None:
            taken.append(url)

        def add_text(self, text: str, source: str) -> None:
            pass

    with pytest.raises(WorkBudgetExceeded):
        _html.scan_html(_doc(40), Sink())
    assert 0 < len(taken) <= 4
    assert taken == [f"https://x{i}.example.fr/" for i in range(len(taken))]

"""Reading the visible text of HTML parts is bounded by a work budget of its own.

It runs in the MIME parse, before the checks' budget starts; hostile markup (a megabyte
of comments, bogus tags…) must not hold a worker for as long as it likes.
"""

from __future__ import annotations

from milter.mime.parse import MimeLimits, parse_message

_HEAD = b"From: a@b.example\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
_BODY = b"<p>d\xc3\xa9but</p>" + b"<!--x--></1>" * 30_000 + b"<p>fin</p>\r\n"


def test_visible_text_is_read_whole_within_the_budget() -> None:
    view = parse_message(_HEAD + _BODY)
    assert view.html_texts[0].startswith("début")
    assert view.html_texts[0].endswith("fin")
    assert not view.limits_hit


def test_past_the_budget_the_rest_is_not_read_and_the_hit_recorded() -> None:
    view = parse_message(_HEAD + _BODY, MimeLimits(text_work_seconds=0.0))
    assert view.html_texts[0].startswith("début")  # what was read before stopping
    assert "fin" not in view.html_texts[0]
    assert [hit.limit for hit in view.limits_hit] == ["work"]
    assert any("limit work" in defect for defect in view.defects)

"""A worker freezes its long-lived heap after the warm-up (fewer objects for each full
collection to walk); a policy reload unfreezes first, so the old policy is not kept."""

from __future__ import annotations

import gc
import weakref

from milter.frontends.workers import settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_frozen_objects_leave_the_collectors_sight_and_a_reload_frees_the_old_ones() -> None:
    try:
        old = _Node()
        alive = weakref.ref(old)
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is old for o in gc.get_objects())  # frozen: not walked
        del old
        gc.collect()
        assert alive() is not None  # frozen cycles wait for the next settle (a reload)
        settle_heap(again=True)
        assert alive() is None
    finally:
        gc.unfreeze()

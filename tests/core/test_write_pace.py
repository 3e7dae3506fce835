"""``tether.serving_pace.WritePace``: when a server gives up on a client that reads too slowly.

The rules, on a virtual clock: a wait fails ``timeout`` seconds after the client last took
anything; with ``min_rate``, also once the seconds spent waiting (over all waits) pass
``timeout`` plus one per ``min_rate`` bytes taken since the first wait. Time between waits
does not count.
"""

from __future__ import annotations

import math

import pytest

from tether.serving_pace import WritePace


def test_no_progress_is_timed_from_the_last_progress() -> None:
    pace = WritePace(timeout=10)
    assert pace.wait(100.0, 0) == 110.0
    assert pace.progress(105.0, 0) == 110.0  # nothing taken: same deadline
    assert pace.progress(108.0, 1) == 118.0
    assert pace.reason(118.0) == "no write progress for 10 s"


def test_a_reader_that_keeps_up_is_never_cut() -> None:
    pace = WritePace(timeout=10, min_rate=100)
    deadline = pace.wait(0.0, 0)
    for second in range(1, 1000):
        deadline = pace.progress(float(second), 100 * second)  # exactly the minimum rate
        assert deadline > second
    assert deadline == 999.0 + 10


def test_a_trickle_is_cut_by_the_rate() -> None:
    pace = WritePace(timeout=10, min_rate=100)
    pace.wait(0.0, 0)
    # 10 bytes a second: progress every second, so never 10 s without progress; the wait
    # may last 10 s plus 1 s per 100 bytes taken: t = 10 + 10t / 100, t = 11.1 s.
    deadline = math.inf
    second = 0
    while second < deadline:
        second += 1
        deadline = pace.progress(float(second), 10 * second)
    assert 11 <= deadline < 12
    assert pace.reason(deadline) == "the client reads slower than 100 bytes/s"


def test_only_waiting_counts() -> None:
    pace = WritePace(timeout=10, min_rate=100)
    pace.wait(0.0, 0)
    pace.done(5.0)  # 5 s waited, nothing taken
    # An hour later (the app was producing), the next wait has 10 - 5 s left.
    assert pace.wait(3600.0, 0) == 3605.0
    pace.done(3601.0)
    # Bytes taken since the first wait earn time in later waits: 100 bytes, 1 s.
    assert pace.wait(7200.0, 500) == 7200.0 + 10 - 6 + 5


def test_the_origin_of_the_count_does_not_matter() -> None:
    # TCP's acknowledged bytes include everything before the first wait.
    pace = WritePace(timeout=10, min_rate=100)
    assert pace.wait(0.0, 1_000_000) == 10.0
    assert pace.progress(5.0, 1_000_500) == 15.0  # 500 bytes since: 5 s more, from 10 s


def test_without_a_wait() -> None:
    pace = WritePace(timeout=10, min_rate=100)
    assert [pace.waiting] == [False]  # (a list: mypy would narrow the property for good)
    assert pace.progress(1.0, 10) == math.inf
    with pytest.raises(RuntimeError):
        pace.deadline()
    pace.wait(2.0, 10)
    assert [pace.waiting] == [True]
    pace.done(3.0)
    assert [pace.waiting] == [False]

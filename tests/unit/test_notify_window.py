"""When a producer's publish wakes consumers: per message for slow traffic, once per window
for a stream (brain.bus.windows.NotifyWindow; the bus end of it is in test_bus_wakeups)."""
from __future__ import annotations

from brain.bus.windows import NotifyWindow

WINDOW_MS = 10


def publish_every(gaps_s: list[float], heard: bool = True) -> list[int | None]:
    """Each publish's wake-up, sent after the given gaps, as Bus._publish_alone decides it
    (a publish that announces a window and has a listener opens that window)."""
    w, now, wakes = NotifyWindow(), 100.0, []
    for gap in gaps_s:
        now += gap
        wake = w.wake_for(now, WINDOW_MS)
        if wake and heard:
            w.quiet_until = now + wake / 1000
        wakes.append(wake)
    return wakes


def test_traffic_at_500_a_second_gets_a_notification_per_message():
    assert publish_every([0.002] * 500) == [0] * 500


def test_a_stream_announces_one_window_then_publishes_silently_until_it_closes():
    wakes = publish_every([0.0005] * 400)
    first = wakes.index(WINDOW_MS)
    assert 20 < first < 80, "a stream is recognised after a few dozen publishes, not at once"
    assert set(wakes[:first]) == {0}
    after = wakes[first:]
    assert after.count(None) > 0.9 * len(after) and 0 not in after, "one announcement per window, the rest silent"
    windows = sum(1 for x in after if x)
    assert len(after) / 21 <= windows <= len(after) / 19 + 1, "a 10 ms window holds 20 publishes 0.5 ms apart"


def test_one_slow_publish_does_not_end_a_stream():
    gaps = [0.0005] * 100 + [0.010] + [0.0005] * 100
    wakes = publish_every(gaps)
    assert 0 not in wakes[80:], "after the stream was recognised, not one plain notification"


def test_a_short_burst_after_quiet_is_not_a_stream():
    assert publish_every([5.0] + [0.0005] * 20) == [0] * 21


def test_catching_up_after_a_stall_at_500_a_second_is_not_a_stream():
    # a 20 ms stall, then the ten publishes it held back go out back to back
    gaps = [0.002] * 200 + [0.020] + [0.0008] * 10 + [0.002] * 100
    assert publish_every(gaps) == [0] * len(gaps)


def test_without_a_listener_no_window_opens():
    assert None not in publish_every([0.0005] * 200, heard=False)

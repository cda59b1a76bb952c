"""Wake-up windows, at both ends.

A notification costs the producer a database-wide lock at commit and every listening process
a wake-up and usually a claim, per message. So a producer publishing a topic as a stream
announces a window in one notification and sends none for what it publishes on that topic
until the window closes (NotifyWindow, used by the publisher); a consumer that hears the
announcement looks once the window and a grace have passed (Linger), and that one claim
takes the whole window. Slower traffic gets a notification per message.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

# How fast a producer's average gap between publishes follows each new gap: one slow
# publish does not end a stream, and a short burst does not start one.
STREAM_GAP_WEIGHT = 0.05
# A stream publishes on average more than this many messages per window: below it a message's
# own notification is worth its cost, and a window's wait is too long for so few messages.
STREAM_PER_WINDOW = 7
# Consumers look this long after an announced window has closed, so a silent publish whose
# commit returns within it needs no wake-up of its own.
WINDOW_GRACE_S = 0.003


@dataclass
class NotifyWindow:
    """A producer's wake-up state for one topic (time.monotonic)."""

    last_sent: float = float("-inf")
    quiet_until: float = float("-inf")
    # Moving average of the gap between publishes, each gap counted as at most the window
    # (so it starts at the window, whatever this default).
    gap: float = 1.0
    # Recent publish round trip: a publish is left silent only when it should commit well
    # inside the window, so that a late wake-up of its own stays rare.
    round_trip: float = 0.0

    def wake_for(self, sent: float, window_ms: int) -> int | None:
        """How a publish sent now wakes consumers: None, not at all (it is inside the window
        this producer announced); 0, with a notification of its own; more, with one that
        announces a window of that many milliseconds (see Publisher.publish_alone)."""
        window_s = window_ms / 1000
        self.gap = min(self.gap + STREAM_GAP_WEIGHT * (min(sent - self.last_sent, window_s) - self.gap), window_s)
        self.last_sent = sent
        if sent + 2 * self.round_trip < self.quiet_until:
            return None
        return window_ms if self.gap < window_s / STREAM_PER_WINDOW else 0


@dataclass
class Wake:
    """A consumer's wake-up: the event its loop waits on, and when the last window a producer
    announced closes (time.monotonic, not the event loop's clock, which uvloop keeps in whole
    milliseconds). A claim that began before that is part of a stream."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    linger_until: float = float("-inf")

    def look_at(self, when: float) -> None:
        """Wake once time.monotonic() has reached `when`: a claim begun then sees every
        message a window announced before has left silent."""
        self.linger_until = max(self.linger_until, when)
        asyncio.get_running_loop().call_later(when - time.monotonic(), _wake_when_due, self.event, when)


def _wake_when_due(event: asyncio.Event, when: float) -> None:
    """Wake.look_at's timer. A plain function with its arguments, not a closure that re-arms
    itself: that closure referred to itself, a cycle per announced window for the collector."""
    left = when - time.monotonic()
    if left > 0:  # the loop's clock is in whole milliseconds: a timer can fire early
        asyncio.get_running_loop().call_later(left + 0.001, _wake_when_due, event, when)
    else:
        event.set()

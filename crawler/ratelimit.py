"""NCBI's requests-per-second cap, enforced where requests are sent (the download handler).

Scrapy's DOWNLOAD_DELAY spaces requests from the moment they leave its queue; the send
happens later, after whatever else the event loop runs first. Under CPU load that lag
varies, and a late send followed by a punctual one put 4 requests inside one second at the
stand-in (and earned a 429). This limiter is asked immediately before each send, and holds
two rules, each against a clock reading of its own:

1. spacing: a send waits ``interval`` (1.05 / rate) after the previous send began, so
   requests never bunch, whatever the pace of their answers;
2. the window: the (N+1)-th send waits until ``window`` seconds after the N-th most recent
   request *finished* (answer read, or failed). The server saw that request before it
   answered, and sees ours after we send, so the two arrivals are more than ``window``
   apart whatever lag either side had: never more than N arrivals in any window.

Rule 2 costs nothing while answers are quick (rule 1 binds); it binds only when an answer
was slow enough that a late arrival could have shrunk the window.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

RATE_NO_KEY = 3.0  # NCBI: 3 requests/s without an API key, all E-utilities together
RATE_WITH_KEY = 10.0  # 10/s with one
SPACING_MARGIN = 1.05  # spacing 5 % above 1/rate: 0.35 s without a key, 0.105 s with one
WINDOW_MARGIN = 0.01  # seconds beyond the window, against clock granularity


@dataclass
class Send:
    """One request as the limiter saw it: when it was sent, and when its answer was done."""

    sent: float
    done: float | None = None


class SendLimiter:
    """At most ``max_in_window`` sends in any ``window`` seconds, spaced ``interval`` apart.

    Pure arithmetic over a clock (``time.monotonic`` unless one is given), so that the
    rules can be checked with a fake clock; the download handler does the waiting.
    """

    def __init__(
        self,
        rate: float,
        *,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        spacing_margin: float = SPACING_MARGIN,
        window_margin: float = WINDOW_MARGIN,
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number, not {rate!r}")
        self.rate = rate
        self.window = window
        self.max_in_window = max(1, math.floor(rate * window))
        self.interval = spacing_margin * window / rate
        self.window_margin = window_margin
        self.clock = clock
        self._recent: deque[Send] = deque(maxlen=self.max_in_window)

    def delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next send may go (0.0: now); inf while the window is
        full of requests still in flight (wait for one to finish)."""
        now = self.clock() if now is None else now
        if not self._recent:
            return 0.0
        earliest = self._recent[-1].sent + self.interval
        if len(self._recent) == self.max_in_window:
            oldest = self._recent[0]
            if oldest.done is None:
                return math.inf
            earliest = max(earliest, oldest.done + self.window + self.window_margin)
        return max(0.0, earliest - now)

    def sent(self, now: float | None = None) -> Send:
        """Record a send that is going now; hand the result to :meth:`finished` later."""
        entry = Send(self.clock() if now is None else now)
        self._recent.append(entry)
        return entry

    def finished(self, entry: Send, now: float | None = None) -> None:
        """The answer to ``entry`` was read (or the request failed): the server is done."""
        if entry.done is None:
            entry.done = self.clock() if now is None else now


def rate_for(api_key: bool) -> float:
    """NCBI's cap for a client with or without an API key."""
    return RATE_WITH_KEY if api_key else RATE_NO_KEY

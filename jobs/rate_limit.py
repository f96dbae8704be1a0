"""A per-sender send rate shared by every worker on every machine: GCRA in one Redis script.

Twilio meters senders (long code 1 msg/s, toll-free 3, short code 100); exceeding it earns 429s and
queueing at Twilio. Workers ask Redis for permission before each provider call, so the aggregate
rate holds however many workers run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis

# KEYS[1]: the sender's key. ARGV[1]: emission interval (µs), ARGV[2]: burst tolerance (µs).
# Returns 0 when the caller may send now, else how many µs to wait. Uses the server clock so that
# machines with skewed clocks still share one schedule.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return wait end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
"""


# A sleeping caller always wakes a little late; with no slack that lateness is forfeited on every
# slot and the shared rate drifts below the configured one (-5% measured with two busy workers).
# Letting a caller in this much early keeps the long-run rate exact: at most one message a few ms early.
WAKE_SLACK_US = 5_000


class RateLimiter:
    """Blocks until the sender may send one more message at ``per_second``."""

    def __init__(
        self,
        redis: Redis,
        sender: str,
        per_second: float,
        burst: int = 1,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.key = f"huifang:rate:{sender}"
        self.interval_us = int(1_000_000 / per_second)
        self.tolerance_us = self.interval_us * max(0, burst - 1) + min(WAKE_SLACK_US, self.interval_us // 2)
        self._script = redis.register_script(_GCRA)
        self._sleep = sleep

    def try_acquire(self) -> float:
        """0.0 when a slot was taken, else the seconds to wait before asking again."""
        wait_us = int(self._script(keys=[self.key], args=[self.interval_us, self.tolerance_us]))
        return wait_us / 1_000_000

    def acquire(self) -> None:
        """Wait for and take one slot."""
        while (wait := self.try_acquire()) > 0:
            self._sleep(wait)

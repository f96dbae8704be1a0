"""The per-sender limiter holds its rate across many clients sharing one Redis."""

import threading
import time

from redis import Redis

from jobs.rate_limit import RateLimiter


def test_rate_holds_across_threads(redis_url):
    conn = Redis.from_url(redis_url)
    rate, sends = 50.0, []
    lock = threading.Lock()

    def client():
        limiter = RateLimiter(conn, "sms:+15005550006", rate)
        for _ in range(25):
            limiter.acquire()
            with lock:
                sends.append(time.monotonic())

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span = sends[-1] - sends[0]
    measured = (len(sends) - 1) / span
    assert len(sends) == 100
    assert abs(measured - rate) / rate < 0.1, measured


def test_senders_are_independent_and_try_acquire_reports_the_wait(redis_url):
    conn = Redis.from_url(redis_url)
    slow = RateLimiter(conn, "sms:slow", 1.0)
    other = RateLimiter(conn, "sms:other", 1.0)
    assert slow.try_acquire() == 0.0
    wait = slow.try_acquire()
    assert 0.5 < wait <= 1.0
    assert other.try_acquire() == 0.0


def test_late_wake_ups_do_not_drag_the_rate_down(redis_url):
    """A caller that always oversleeps by 2 ms still gets the configured rate, not 1 / (interval + 2 ms)."""
    conn = Redis.from_url(redis_url)
    rate, sends = 100.0, []
    limiter = RateLimiter(conn, "sms:late-sleeper", rate, sleep=lambda s: time.sleep(s + 0.002))
    for _ in range(150):
        limiter.acquire()
        sends.append(time.monotonic())
    measured = (len(sends) - 1) / (sends[-1] - sends[0])
    assert abs(measured - rate) / rate < 0.03, measured

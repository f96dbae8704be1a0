"""The RQ worker entry point: one app, an app context, the named queues and the tick scheduled.

Run it as ``huifang worker`` (or ``python worker.py``); start as many as you like on as many
machines as you like — the tick's and the nightly lifetime refit's deterministic job ids keep the
schedule single.
"""

from __future__ import annotations

import logging

from rq import Worker
from rq.serializers import JSONSerializer

from app import create_app
from database.base import utcnow
from jobs.connection import QUEUES, redis
from jobs.schedule import run_tick_now, schedule_dashboard_refresh, schedule_next_tick, schedule_nightly_fit


class HuifangWorker(Worker):
    """An RQ worker that re-seeds the periodic jobs during maintenance, so a Redis that lost its data heals."""

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        now = utcnow()
        schedule_next_tick(now, self.flask_app)
        schedule_dashboard_refresh(now, self.flask_app)
        schedule_nightly_fit(now, self.flask_app)


def run(queues: tuple[str, ...] = QUEUES, burst: bool = False, app=None) -> None:
    """Run a worker on ``queues`` with RQ's scheduler, inside an app context."""
    app = app or create_app()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with app.app_context():
        worker = HuifangWorker(list(queues), connection=redis(app), serializer=JSONSerializer)
        worker.flask_app = app
        run_tick_now(app)
        schedule_dashboard_refresh(utcnow(), app)
        schedule_nightly_fit(utcnow(), app)
        worker.work(burst=burst, with_scheduler=True, max_idle_time=None)


if __name__ == "__main__":
    run()

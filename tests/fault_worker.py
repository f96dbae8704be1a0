"""A real worker or scheduler process for the fault tests, with a slow, duplicate-detecting file channel.

Usage: ``python -m tests.fault_worker worker|burst|scheduler '<app config as JSON>'``. The config
key ``send_delay`` (seconds per message) slows the ``slow-file`` SMS channel so a test can kill the
process mid-batch; ``scheduler_seconds`` is how long a scheduler keeps ticking.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

from channels.base import OutboundMessage, SendResult
from channels.file_channel import FileChannel


class SlowFileChannel(FileChannel):
    """The file channel, slowed down, leaving a ``duplicates/`` marker whenever a message is sent again."""

    def __init__(self, name: str, directory: Path, delay: float):
        super().__init__(name, directory)
        self.delay = delay

    def send(self, message: OutboundMessage) -> SendResult:
        time.sleep(self.delay)
        if (self.directory / f"{message.message_id:09d}-{self.name}.txt").exists():
            marks = self.directory.parent / "duplicates"
            marks.mkdir(parents=True, exist_ok=True)
            (marks / f"{message.message_id:09d}-{uuid.uuid4().hex}").touch()
        return super().send(message)


def register_slow_channel() -> None:
    """Make ``sms_channel="slow-file"`` build a SlowFileChannel (test processes only)."""
    from channels import registry

    registry._FACTORIES[("sms", "slow-file")] = lambda s: SlowFileChannel(
        "sms", s.outbox_dir, float(s.extra.get("send_delay", 0.01))
    )


def main(mode: str, config: dict) -> None:
    from app import create_app

    register_slow_channel()
    app = create_app({**config, "instance_path": Path(config["instance_path"])})
    if mode == "scheduler":
        from jobs.tasks import tick

        deadline = time.monotonic() + float(config.get("scheduler_seconds", 5))
        with app.app_context():
            while time.monotonic() < deadline:
                tick()
                time.sleep(0.2)
        return
    import worker

    worker.run(burst=mode == "burst", app=app)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))

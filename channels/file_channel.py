"""The development channel: each message becomes a file under instance/outbox/."""

from __future__ import annotations

import time
from pathlib import Path

from channels.base import OutboundMessage, SendOutcome, SendResult


class FileChannel:
    """Writes what would have been sent, headers first, so a developer can read it."""

    def __init__(self, name: str, directory: Path):
        self.name = name
        self.directory = directory

    def send(self, message: OutboundMessage) -> SendResult:
        started = time.perf_counter()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{message.message_id:09d}-{self.name}.txt"
            lines = [f"To: {message.to}"]
            if message.subject:
                lines.append(f"Subject: {message.subject}")
            if message.reply_to:
                lines.append(f"Reply-To: {message.reply_to}")
            lines.extend(f"{k}: {v}" for k, v in message.headers.items())
            lines += ["", message.body]
            if message.html:
                lines += ["", "--- html ---", message.html]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError as exc:
            return SendResult(SendOutcome.RETRY, error=f"cannot write outbox file: {exc}")
        return SendResult(
            SendOutcome.SENT,
            provider_id=f"file:{path.name}",
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def close(self) -> None:
        pass

"""A loopback stand-in for Twilio's Messages API (create, fetch, list), for tests and benches.

Enough of the wire format for the official SDK: form-encoded create, JSON resources with RFC 2822
dates, and list pages filtered by ``To`` and ``DateSent>=``. ``stall_after_store`` makes it accept
a message and then answer too late, which is how a real timeout-after-acceptance looks to us.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ACCOUNT_SID = "AC" + "0" * 32


class LoopbackTwilio:
    """Runs in a thread; ``messages`` holds every message it accepted, in order."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.messages: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.stall_after_store = 0.0  # seconds to wait after storing, before answering
        self.refuse_before_store = False  # drop the connection without storing (never accepted)
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackTwilio:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent_to(self, to: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages.values() if m["to"] == to]

    def create(self, form: dict[str, str]) -> dict:
        now = dt.datetime.now(dt.UTC)
        sid = "SM" + uuid.uuid4().hex
        record = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": "queued" if form.get("MessagingServiceSid") else "sent",
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "date_created": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True),
            "date_sent": format_datetime(now, usegmt=True),
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
            "subresource_uris": {},
            "_created": now,
        }
        with self.lock:
            self.messages[sid] = record
        return record

    def list(self, query: dict[str, str]) -> list[dict]:
        since = query.get("DateSent>")
        since_date = dt.date.fromisoformat(since.lstrip("=")[:10]) if since else None
        with self.lock:
            found = [
                m
                for m in self.messages.values()
                if ("To" not in query or m["to"] == query["To"])
                and (since_date is None or m["_created"].date() >= since_date)
            ]
        return sorted(found, key=lambda m: m["_created"], reverse=True)


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _handler(fake: LoopbackTwilio):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if not self.path.endswith("/Messages.json"):
                return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
            if fake.refuse_before_store:
                self.close_connection = True
                return None
            record = fake.create(form)
            if fake.stall_after_store:
                threading.Event().wait(fake.stall_after_store)
            return self._reply(201, _public(record))

        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path.endswith("/Messages.json"):
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                records = [_public(m) for m in fake.list(query)]
                return self._reply(
                    200,
                    {
                        "messages": records,
                        "page": 0,
                        "page_size": len(records) or 50,
                        "start": 0,
                        "end": max(len(records) - 1, 0),
                        "first_page_uri": parts.path,
                        "next_page_uri": None,
                        "previous_page_uri": None,
                        "uri": self.path,
                    },
                )
            sid = parts.path.rsplit("/", 1)[-1].removesuffix(".json")
            with fake.lock:
                record = fake.messages.get(sid)
            if record is None:
                return self._reply(404, {"code": 20404, "message": f"{sid} not found", "status": 404})
            return self._reply(200, _public(record))

    return Handler

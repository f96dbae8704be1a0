"""A small stand-in for Twilio's Messages API on loopback, for driving the real ``twilio`` SDK in tests.

It speaks enough of the API for our channel: create (``POST …/Messages.json``) and fetch
(``GET …/Messages/{sid}.json``), answers with Twilio-shaped JSON, and can be scripted to refuse,
throttle, fail, stall or hang up. ``signed_post`` sends a webhook the way Twilio signs one.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twilio.request_validator import RequestValidator

_CREATE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages\.json$")
_FETCH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages/(?P<sid>\w+)\.json$")


@dataclass
class Scripted:
    """One canned answer: HTTP status, JSON body, and an optional delay before answering."""

    status: int
    body: dict | None = None
    delay: float = 0.0
    hang_up: bool = False  # close the connection without answering (after reading the request)
    close_after: bool = False  # answer, then close the kept-alive connection (an idle timeout)


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    auth: tuple[str, str] | None
    headers: dict[str, str] = field(default_factory=dict)
    peer: tuple[str, int] | None = None  # the client's address: one per TCP connection


def twilio_error(status: int, code: int, message: str) -> Scripted:
    """The error body Twilio sends with a 4xx/5xx."""
    return Scripted(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class FakeTwilio:
    """Run with ``with FakeTwilio() as fake:``; ``fake.url`` is the base URL to give the channel."""

    def __init__(self, account_sid: str = "AC" + "0" * 32):
        self.account_sid = account_sid
        self.requests: list[Recorded] = []
        self.script: list[Scripted] = []
        self.messages: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def then(self, *answers: Scripted) -> FakeTwilio:
        """Queue answers for the next requests, in order; afterwards the normal behaviour resumes."""
        self.script.extend(answers)
        return self

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        self.messages[sid].update(status=status, error_code=error_code)

    # -- the HTTP side ---------------------------------------------------------------------------
    def _answer(self, method: str, path: str, form: dict[str, str]) -> Scripted:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        created = _CREATE.match(path)
        if method == "POST" and created:
            sid = "SM" + secrets.token_hex(16)
            body = {
                "sid": sid,
                "account_sid": created["account"],
                "to": form.get("To"),
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "status": "queued" if "From" in form else "accepted",
                "num_segments": "1",
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{created['account']}/Messages/{sid}.json",
            }
            self.messages[sid] = body
            return Scripted(201, body)
        fetched = _FETCH.match(path)
        if method == "GET" and fetched:
            if fetched["sid"] in self.messages:
                return Scripted(200, self.messages[fetched["sid"]])
            return twilio_error(404, 20404, f"The requested resource {path} was not found")
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                path, _, query = self.path.partition("?")
                form = dict(urllib.parse.parse_qsl(raw or query, keep_blank_values=True))
                fake.requests.append(
                    Recorded(
                        method, path, form, _basic_auth(self.headers), dict(self.headers), self.client_address
                    )
                )
                answer = fake._answer(method, path, form)
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.hang_up:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = json.dumps(answer.body or {}).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if answer.close_after:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _basic_auth(headers) -> tuple[str, str] | None:
    value = headers.get("Authorization") or ""
    if not value.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    return user, password


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for this POST."""
    return RequestValidator(auth_token).compute_signature(url, params)


def signed_post(auth_token: str, url: str, params: dict[str, str], *, public_url: str | None = None):
    """POST a form webhook to ``url`` signed for ``public_url`` (the address Twilio was given)."""
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("X-Twilio-Signature", sign(auth_token, public_url or url, params))
    return urllib.request.urlopen(request, timeout=5)

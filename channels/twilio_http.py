"""The twilio SDK's HTTP transport on the standard library: keep-alive connections, one per thread.

``requests`` and ``urllib3`` cost about 0.3 ms of CPU per API call (measured: half a send's CPU
besides rendering and the database). The SDK takes any ``HttpClient``, and Twilio's REST API needs
only GET and POST with a form body, Basic auth, TLS and keep-alive, which ``http.client`` does.

Failures are raised as two exceptions that say what the channel must know to stay at-most-once:
`NotSent` when the request cannot have reached the provider (connect, TLS or proxy failure; safe
to retry) and `MaybeSent` when it may have (a timeout or a connection lost once the request began
to leave; to be reconciled, never resent).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import select
import ssl
import threading
import urllib.parse
import urllib.request

from twilio.base.exceptions import TwilioException
from twilio.http import HttpClient
from twilio.http.response import Response

TWILIO_API = "https://api.twilio.com"
_JSON_TYPES = ("application/json", "application/scim+json")
_FAILURES = (OSError, http.client.HTTPException)


class NotSent(TwilioException):
    """The request cannot have reached the provider: retrying it cannot send twice."""


class MaybeSent(TwilioException):
    """The request may have reached the provider: only a lookup can tell whether it was accepted."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


class KeepAliveHttpClient(HttpClient):
    """Sends the SDK's requests over kept-alive ``http.client`` connections, optionally to another
    base URL (a regional edge, or a test double on loopback)."""

    def __init__(self, base_url: str = TWILIO_API, timeout: float = 10.0):
        super().__init__(logging.getLogger("twilio.http_client"), is_async=False, timeout=timeout)
        self.base_url = base_url.rstrip("/")
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        # The proxy environment is read once, not per call (requests re-read it every time).
        self._proxies = urllib.request.getproxies()

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ) -> Response:
        """One API call; raises `NotSent` or `MaybeSent` instead of a transport error."""
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        parts = urllib.parse.urlsplit(url)
        query = "&".join(q for q in (parts.query, urllib.parse.urlencode(params or {}, doseq=True)) if q)
        target = (parts.path or "/") + (f"?{query}" if query else "")
        sent_headers = dict(headers or {})
        body = None
        if data is not None:
            if sent_headers.get("Content-Type") in _JSON_TYPES:
                body = json.dumps(data).encode()
            else:
                body = urllib.parse.urlencode(data, doseq=True).encode()
                sent_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            sent_headers["Authorization"] = f"Basic {token}"
        conn, target = self._connection(parts, target, timeout)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("%s %s", method.upper(), url)
        try:
            conn.request(method.upper(), target, body=body, headers=sent_headers)
            answer = conn.getresponse()
            text = answer.read().decode("utf-8", "replace")
        except TimeoutError as exc:
            self._drop(conn)
            raise MaybeSent(f"timeout after sending: {exc}", timed_out=True) from exc
        except _FAILURES as exc:
            self._drop(conn)
            raise MaybeSent(f"connection lost after sending: {type(exc).__name__}: {exc}") from exc
        if answer.will_close:
            self._drop(conn)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("Response Status Code: %s", answer.status)
        return Response(answer.status, text, dict(answer.getheaders()))

    def close(self) -> None:
        """Close every connection this client opened, in any thread."""
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def _connection(
        self, parts: urllib.parse.SplitResult, target: str, timeout: float
    ) -> tuple[http.client.HTTPConnection, str]:
        key = (parts.scheme, parts.netloc)
        pool: dict = self._local.__dict__.setdefault("connections", {})
        conn = pool.get(key)
        if conn is not None and (conn.sock is None or _closed_by_peer(conn.sock)):
            # The server closed an idle keep-alive connection: reconnect before sending anything,
            # so that a closed socket never makes a request ambiguous.
            self._drop(conn)
            conn = None
        if conn is None:
            conn = self._open(parts, timeout)
            pool[key] = conn
            with self._lock:
                self._all.append(conn)
        else:
            conn.timeout = timeout
            conn.sock.settimeout(timeout)
        if parts.scheme == "http" and self._proxy_for(parts):
            target = f"http://{parts.netloc}{target}"  # a plain-HTTP proxy takes the absolute URL
        return conn, target

    def _open(self, parts: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
        host, port = parts.hostname or "", parts.port
        proxy = self._proxy_for(parts)
        if proxy:
            proxied = urllib.parse.urlsplit(proxy)
            connect_to, connect_port = proxied.hostname or "", proxied.port
        else:
            connect_to, connect_port = host, port
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                connect_to, connect_port, timeout=timeout, context=self._context()
            )
            if proxy:
                conn.set_tunnel(host, port or 443)
        else:
            conn = http.client.HTTPConnection(connect_to, connect_port, timeout=timeout)
        try:
            conn.connect()  # connect (and TLS, and the proxy tunnel) before a byte of the request
        except _FAILURES as exc:
            conn.close()
            raise NotSent(f"cannot connect to {parts.netloc}: {type(exc).__name__}: {exc}") from exc
        return conn

    def _proxy_for(self, parts: urllib.parse.SplitResult) -> str | None:
        proxy = self._proxies.get(parts.scheme)
        if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
            return None
        return proxy

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            self._tls = ssl.create_default_context(cafile=bundle or _certifi_bundle())
        return self._tls

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        pool = getattr(self._local, "connections", {})
        for key in [k for k, v in pool.items() if v is conn]:
            del pool[key]
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)


def _closed_by_peer(sock) -> bool:
    """True when an idle connection has something to read: the peer's FIN (or junk), so not reusable."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _certifi_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # the system's store, as the ssl module finds it
        return None
    return certifi.where()

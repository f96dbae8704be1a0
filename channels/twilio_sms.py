"""SMS through Twilio's Messages API, with provider refusals mapped to retry / fail / unknown."""

from __future__ import annotations

import logging
import os
import time

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from channels.base import OutboundMessage, SendOutcome, SendResult

TWILIO_API = "https://api.twilio.com"
# Error codes that will not get better by retrying (invalid/unreachable number, opted out, blocked).
PERMANENT_CODES = frozenset(
    {21211, 21212, 21214, 21407, 21408, 21610, 21612, 21614, 30003, 30004, 30005, 30006}
)
RETRY_CODES = frozenset({20003, 20429, 20500, 20503, 30001, 30022})
_JSON_TYPES = ("application/json", "application/scim+json")


class _RebasedHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to another base URL (a regional edge, or a test double on loopback)."""

    def __init__(self, base_url: str, timeout: float):
        # requests re-reads the proxy and CA-bundle environment on every call (a tenth of a send's
        # CPU, measured); read it once here instead, then stop the per-call lookup.
        proxies = requests.utils.get_environ_proxies(base_url) or None
        super().__init__(timeout=timeout, proxy=proxies)
        self.session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        self.base_url = base_url.rstrip("/")

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
        """The SDK's request, prepared directly rather than through the session's merge of cookies,
        hooks and environment (which this client never uses): that merge was a fifth of a send's
        CPU. The same ``requests`` transport and exceptions, so failures map as before."""
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        as_json = bool(headers) and headers.get("Content-Type") in _JSON_TYPES
        kwargs = {"method": method.upper(), "url": url, "params": params, "headers": headers, "auth": auth}
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request(kwargs)
        prepared = requests.PreparedRequest()
        prepared.prepare(**kwargs, data=None if as_json else data, json=data if as_json else None)
        response = self.session.send(
            prepared,
            allow_redirects=allow_redirects,
            timeout=timeout,
            proxies=self.proxy,
            verify=self.session.verify,
        )
        if self.logger.isEnabledFor(logging.INFO):
            self.log_response(response.status_code, response)
        return Response(int(response.status_code), response.text, response.headers)


class TwilioSmsChannel:
    """One Twilio client per worker process; ``send`` never raises for a provider refusal."""

    name = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ):
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs HUIFANG_TWILIO_ACCOUNT_SID and HUIFANG_TWILIO_AUTH_TOKEN")
        if not (from_number or messaging_service_sid):
            raise ValueError("Twilio needs HUIFANG_TWILIO_FROM or HUIFANG_TWILIO_MESSAGING_SERVICE_SID")
        http = _RebasedHttpClient(api_base_url or TWILIO_API, timeout)
        self.client = Client(account_sid, auth_token, http_client=http)
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid

    def send(self, message: OutboundMessage) -> SendResult:
        started = time.perf_counter()
        kwargs: dict[str, str] = {"to": message.to, "body": message.body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number or ""
        if message.status_callback:
            kwargs["status_callback"] = message.status_callback
        try:
            created = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            return _refusal(exc, started)
        except requests.exceptions.ConnectTimeout as exc:
            return _result(SendOutcome.RETRY, started, error=f"connect timeout: {exc}")
        except requests.exceptions.Timeout as exc:
            # The request reached Twilio and may have been accepted: resending could double-send.
            return _result(SendOutcome.UNKNOWN, started, error=f"timeout after sending: {exc}")
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                return _result(SendOutcome.RETRY, started, error=f"cannot connect: {exc}")
            # The connection broke after the request went out ("Connection aborted"): maybe accepted.
            return _result(SendOutcome.UNKNOWN, started, error=f"connection lost after sending: {exc}")
        except (requests.exceptions.RequestException, TwilioException) as exc:
            return _result(SendOutcome.RETRY, started, error=f"{type(exc).__name__}: {exc}")
        return _result(SendOutcome.SENT, started, provider_id=created.sid)

    def fetch_status(self, provider_id: str) -> str:
        """The provider's current status for a message, for reconciling callbacks that never came."""
        return self.client.messages(provider_id).fetch().status

    def close(self) -> None:
        session = getattr(self.client.http_client, "session", None)
        if session is not None:
            session.close()


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the request cannot have left: refused, unresolvable, TLS or proxy failure."""
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _refusal(exc: TwilioRestException, started: float) -> SendResult:
    code = exc.code
    # 401: our credentials, not the message, are wrong; the send can succeed once they are fixed.
    retry = exc.status in (401, 429) or exc.status >= 500 or code in RETRY_CODES
    outcome = SendOutcome.RETRY if retry and code not in PERMANENT_CODES else SendOutcome.FAILED
    return _result(outcome, started, error_code=str(code or exc.status), error=exc.msg)


def _result(outcome: SendOutcome, started: float, **fields) -> SendResult:
    return SendResult(outcome, latency_ms=(time.perf_counter() - started) * 1000, **fields)

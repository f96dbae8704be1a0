"""SMS through Twilio's Messages API, with provider refusals mapped to retry / fail / unknown."""

from __future__ import annotations

import time

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from channels.base import OutboundMessage, SendOutcome, SendResult
from channels.twilio_http import TWILIO_API, KeepAliveHttpClient, MaybeSent, NotSent

# Error codes that will not get better by retrying (invalid/unreachable number, opted out, blocked).
PERMANENT_CODES = frozenset(
    {21211, 21212, 21214, 21407, 21408, 21610, 21612, 21614, 30003, 30004, 30005, 30006}
)
RETRY_CODES = frozenset({20003, 20429, 20500, 20503, 30001, 30022})


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
        self.http = KeepAliveHttpClient(api_base_url or TWILIO_API, timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http)
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
        except NotSent as exc:
            return _result(SendOutcome.RETRY, started, error=str(exc))
        except MaybeSent as exc:
            # The request reached Twilio and may have been accepted: resending could double-send.
            return _result(SendOutcome.UNKNOWN, started, error=str(exc))
        except TwilioException as exc:  # the SDK refused before sending anything
            return _result(SendOutcome.RETRY, started, error=f"{type(exc).__name__}: {exc}")
        return _result(SendOutcome.SENT, started, provider_id=created.sid)

    def fetch_status(self, provider_id: str) -> str:
        """The provider's current status for a message, for reconciling callbacks that never came."""
        return self.client.messages(provider_id).fetch().status

    def close(self) -> None:
        self.http.close()


def _refusal(exc: TwilioRestException, started: float) -> SendResult:
    code = exc.code
    # 401: our credentials, not the message, are wrong; the send can succeed once they are fixed.
    retry = exc.status in (401, 429) or exc.status >= 500 or code in RETRY_CODES
    outcome = SendOutcome.RETRY if retry and code not in PERMANENT_CODES else SendOutcome.FAILED
    return _result(outcome, started, error_code=str(code or exc.status), error=exc.msg)


def _result(outcome: SendOutcome, started: float, **fields) -> SendResult:
    return SendResult(outcome, latency_ms=(time.perf_counter() - started) * 1000, **fields)

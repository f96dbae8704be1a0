"""The Twilio SMS channel, driving the real ``twilio`` SDK against a fake Messages API on loopback."""

from __future__ import annotations

import socket
import time

import pytest

from channels.base import OutboundMessage, SendOutcome
from channels.twilio_sms import TwilioSmsChannel
from tests.fake_twilio import FakeTwilio, Scripted, twilio_error

SID = "AC" + "1" * 32
TOKEN = "test-auth-token"
CALLBACK = "https://huifang.example.com/webhooks/twilio/status"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def fake():
    with FakeTwilio(SID) as server:
        yield server


@pytest.fixture
def channel(fake):
    chan = TwilioSmsChannel(SID, TOKEN, from_number="+15005550006", api_base_url=fake.url, timeout=0.5)
    yield chan
    chan.close()


def _sms(body="伟您好，满意回复1，不满意回复2\n回T退订", to="+8613800138000", callback=CALLBACK):
    return OutboundMessage(message_id=7, to=to, body=body, status_callback=callback)


def test_send_posts_the_form_twilio_expects(channel, fake):
    result = channel.send(_sms())
    assert result.outcome is SendOutcome.SENT, result
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34
    assert result.error_code is None and result.latency_ms > 0

    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.auth == (SID, TOKEN)
    assert request.form == {
        "To": "+8613800138000",
        "From": "+15005550006",
        "Body": "伟您好，满意回复1，不满意回复2\n回T退订",
        "StatusCallback": CALLBACK,
    }
    assert fake.messages[result.provider_id]["body"] == request.form["Body"]


def test_messaging_service_sid_replaces_from(fake):
    chan = TwilioSmsChannel(
        SID, TOKEN, messaging_service_sid="MG" + "2" * 32, api_base_url=fake.url, timeout=0.5
    )
    assert chan.send(_sms(callback=None)).outcome is SendOutcome.SENT
    form = fake.requests[0].form
    assert form["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in form and "StatusCallback" not in form
    chan.close()


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        (
            twilio_error(400, 21211, "The 'To' number +86 is not a valid phone number."),
            SendOutcome.FAILED,
            "21211",
        ),
        (twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"), SendOutcome.FAILED, "21610"),
        (twilio_error(400, 21614, "'To' number is not a valid mobile number"), SendOutcome.FAILED, "21614"),
        (
            twilio_error(400, 21408, "Permission to send an SMS has not been enabled for the region"),
            SendOutcome.FAILED,
            "21408",
        ),
        (twilio_error(400, 30007, "Message filtered"), SendOutcome.FAILED, "30007"),
        (twilio_error(401, 20003, "Authenticate"), SendOutcome.RETRY, "20003"),
        (twilio_error(429, 20429, "Too Many Requests"), SendOutcome.RETRY, "20429"),
        (Scripted(429, {"message": "Too Many Requests"}), SendOutcome.RETRY, "429"),
        (twilio_error(500, 20500, "Internal Server Error"), SendOutcome.RETRY, "20500"),
        (Scripted(500, {}), SendOutcome.RETRY, "500"),
        (twilio_error(503, 20503, "Service Unavailable"), SendOutcome.RETRY, "20503"),
    ],
    ids=lambda v: getattr(v, "status", v),
)
def test_provider_answers_map_to_outcomes(channel, fake, answer, outcome, code):
    fake.then(answer)
    result = channel.send(_sms())
    assert result.outcome is outcome
    assert result.error_code == code
    assert result.provider_id is None
    if answer.body and "message" in answer.body:
        assert answer.body["message"] in result.error


def test_read_timeout_is_unknown_never_retried(channel, fake):
    fake.then(Scripted(201, {"sid": "SM" + "9" * 32}, delay=1.5))
    started = time.monotonic()
    result = channel.send(_sms())
    assert result.outcome is SendOutcome.UNKNOWN
    assert "timeout" in result.error
    assert time.monotonic() - started < 1.4
    assert len(fake.requests) == 1  # the SDK did not retry on its own


def test_connection_dropped_after_the_request_is_unknown(channel, fake):
    fake.then(Scripted(201, hang_up=True))
    result = channel.send(_sms())
    assert result.outcome is SendOutcome.UNKNOWN, result
    assert len(fake.requests) == 1


def test_connection_refused_is_retried():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chan = TwilioSmsChannel(
        SID, TOKEN, from_number="+15005550006", api_base_url=f"http://127.0.0.1:{port}", timeout=0.5
    )
    result = chan.send(_sms())
    assert result.outcome is SendOutcome.RETRY
    assert result.provider_id is None
    chan.close()


def test_fetch_status_reads_the_message_back(channel, fake):
    sent = channel.send(_sms())
    assert channel.fetch_status(sent.provider_id) == "queued"
    fake.set_status(sent.provider_id, "delivered")
    assert channel.fetch_status(sent.provider_id) == "delivered"
    fetch = fake.requests[-1]
    assert fetch.method == "GET"
    assert fetch.path == f"/2010-04-01/Accounts/{SID}/Messages/{sent.provider_id}.json"


def test_fetch_status_of_an_unknown_message_raises(channel):
    from twilio.base.exceptions import TwilioRestException

    with pytest.raises(TwilioRestException) as caught:
        channel.fetch_status("SM" + "f" * 32)
    assert caught.value.status == 404


def test_connection_is_reused(channel, fake):
    for _ in range(3):
        assert channel.send(_sms()).outcome is SendOutcome.SENT
    assert len(fake.requests) == 3
    assert len({r.peer for r in fake.requests}) == 1  # one TCP connection, kept alive


def test_a_connection_the_server_closed_is_replaced_before_sending(channel, fake):
    """An idle keep-alive connection closed by Twilio must not make the next send ambiguous."""
    fake.then(Scripted(201, {"sid": "SM" + "1" * 32}, close_after=True))
    assert channel.send(_sms()).outcome is SendOutcome.SENT
    time.sleep(0.1)  # the FIN arrives
    second = channel.send(_sms())
    assert second.outcome is SendOutcome.SENT, second
    assert len(fake.requests) == 2  # sent once each, on a fresh connection the second time
    assert fake.requests[0].peer != fake.requests[1].peer


def test_a_failed_tls_handshake_is_retried(fake):
    chan = TwilioSmsChannel(
        SID, TOKEN, from_number="+15005550006", api_base_url=fake.url.replace("http:", "https:"), timeout=0.5
    )
    result = chan.send(_sms())
    assert result.outcome is SendOutcome.RETRY, result
    assert "cannot connect" in result.error
    assert not [r for r in fake.requests if r.method == "POST"]  # nothing reached the API
    chan.close()


def test_send_from_several_threads_uses_one_connection_each(channel, fake):
    import threading

    results = []

    def send_three():
        results.extend(channel.send(_sms()).outcome for _ in range(3))

    threads = [threading.Thread(target=send_three) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [SendOutcome.SENT] * 9
    assert len({r.peer for r in fake.requests}) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(account_sid="", auth_token=TOKEN, from_number="+1"),
        dict(account_sid=SID, auth_token="", from_number="+1"),
        dict(account_sid=SID, auth_token=TOKEN),
    ],
)
def test_missing_settings_fail_fast(kwargs):
    with pytest.raises(ValueError):
        TwilioSmsChannel(**kwargs)

"""Twilio webhooks: signatures built with the real SDK, payload parsing, and TwiML replies."""

from __future__ import annotations

import threading
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from twilio.request_validator import RequestValidator

from channels.twilio_inbound import (
    TWILIO_STATUSES,
    InboundSms,
    StatusCallback,
    parse_inbound_sms,
    parse_status_callback,
    twiml_message,
    verify_twilio_signature,
)
from tests.fake_twilio import signed_post

TOKEN = "12345678901234567890123456789012"
URL = "https://huifang.example.com/webhooks/twilio/sms"
PARAMS = {
    "MessageSid": "SM" + "a" * 32,
    "SmsSid": "SM" + "a" * 32,
    "AccountSid": "AC" + "b" * 32,
    "From": "+8613800138000",
    "To": "+15005550006",
    "Body": "2 坏了 <script>&",
    "NumMedia": "0",
}


def _signature(url=URL, params=PARAMS, token=TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


# -- signatures ------------------------------------------------------------------------------------


def test_valid_signature_is_accepted():
    assert verify_twilio_signature(TOKEN, URL, PARAMS, _signature())


def test_a_replayed_request_still_verifies_dedup_is_by_message_sid():
    signature = _signature()
    assert verify_twilio_signature(TOKEN, URL, PARAMS, signature)
    assert verify_twilio_signature(TOKEN, URL, dict(PARAMS), signature)


@pytest.mark.parametrize(
    ("url", "params", "signature", "token"),
    [
        pytest.param(URL, {**PARAMS, "Body": "1"}, _signature(), TOKEN, id="tampered body"),
        pytest.param(URL, {**PARAMS, "From": "+8613900000000"}, _signature(), TOKEN, id="tampered sender"),
        pytest.param(URL, {**PARAMS, "Extra": "x"}, _signature(), TOKEN, id="added param"),
        pytest.param(
            URL, {k: v for k, v in PARAMS.items() if k != "NumMedia"}, _signature(), TOKEN, id="dropped param"
        ),
        pytest.param(URL.replace("/sms", "/status"), PARAMS, _signature(), TOKEN, id="wrong path"),
        pytest.param(URL.replace("huifang.", "evil."), PARAMS, _signature(), TOKEN, id="wrong host"),
        pytest.param(URL + "?x=1", PARAMS, _signature(), TOKEN, id="added query"),
        pytest.param(URL, PARAMS, _signature(token="0" * 32), TOKEN, id="signed with another token"),
        pytest.param(URL, PARAMS, None, TOKEN, id="missing signature"),
        pytest.param(URL, PARAMS, "", TOKEN, id="empty signature"),
        pytest.param(URL, PARAMS, "not-base64!!", TOKEN, id="garbage signature"),
        pytest.param(URL, PARAMS, _signature(), "", id="no token configured"),
    ],
)
def test_bad_signatures_are_rejected(url, params, signature, token):
    assert verify_twilio_signature(token, url, params, signature) is False


def test_signature_over_a_url_with_query_and_default_port():
    url = "https://huifang.example.com/webhooks/twilio/status?campaign=3"
    signature = _signature(url=url)
    assert verify_twilio_signature(TOKEN, url, PARAMS, signature)
    # Twilio may sign with or without the default port; the SDK accepts both.
    assert verify_twilio_signature(
        TOKEN, "https://huifang.example.com:443/webhooks/twilio/status?campaign=3", PARAMS, signature
    )


SIGNED_URLS = [
    URL,
    "https://huifang.example.com:443/webhooks/twilio/sms",
    "https://huifang.example.com:8443/webhooks/twilio/sms",
    "HTTPS://huifang.example.com/webhooks/twilio/sms",  # validate() rebuilds it lower-cased
    "https://huifang.example.com/webhooks/twilio/sms?",
    "https://huifang.example.com/webhooks/twilio/sms?x=1#frag",
    "http://huifang.example.com/webhooks/twilio/sms",
]


@pytest.mark.parametrize("signed_url", SIGNED_URLS)
@pytest.mark.parametrize("checked_url", SIGNED_URLS)
def test_the_one_signature_shortcut_agrees_with_the_sdks_validate(signed_url, checked_url):
    """verify_twilio_signature tries the exact URL alone first; its verdict must be validate()'s."""
    signature = _signature(url=signed_url)
    expected = RequestValidator(TOKEN).validate(checked_url, PARAMS, signature)
    assert verify_twilio_signature(TOKEN, checked_url, PARAMS, signature) is expected


class _Receiver:
    """A webhook endpoint on loopback that records what it was sent."""

    def __init__(self):
        self.received: list[tuple[str, dict[str, str], str | None]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                params = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
                receiver.received.append((self.path, params, self.headers.get("X-Twilio-Signature")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_signed_status_callback_over_http_verifies_against_the_public_url():
    receiver = _Receiver()
    try:
        public = "https://huifang.example.com/webhooks/twilio/status"
        params = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered", "AccountSid": "AC" + "b" * 32}
        with signed_post(
            TOKEN, receiver.url + "/webhooks/twilio/status", params, public_url=public
        ) as answer:
            assert answer.status == 204
        [(path, got, signature)] = receiver.received
        assert path == "/webhooks/twilio/status" and got == params
        # The proxy-facing URL is what Twilio signed, not the loopback address the app sees.
        assert verify_twilio_signature(TOKEN, public, got, signature)
        assert not verify_twilio_signature(TOKEN, receiver.url + path, got, signature)
        assert parse_status_callback(got) == StatusCallback("SM" + "c" * 32, "delivered", None)
    finally:
        receiver.close()


# -- inbound SMS -----------------------------------------------------------------------------------


def test_parse_inbound_sms():
    sms = parse_inbound_sms(PARAMS)
    assert sms == InboundSms(
        provider_id=PARAMS["MessageSid"],
        from_number="+8613800138000",
        to_number="+15005550006",
        body="2 坏了 <script>&",
        raw=PARAMS,
    )


def test_inbound_fallbacks_and_trimming():
    params = {"SmsSid": "SM" + "d" * 32, "From": " +8613800138000 ", "Body": ""}
    sms = parse_inbound_sms(params)
    assert sms.provider_id == "SM" + "d" * 32
    assert sms.from_number == "+8613800138000"
    assert sms.to_number == "" and sms.body == ""


def test_mms_sid_is_accepted():
    assert parse_inbound_sms({**PARAMS, "MessageSid": "MM" + "e" * 32}).provider_id.startswith("MM")


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (("MessageSid", "SmsSid"), "MessageSid"),
        (("From",), "From"),
        (("Body",), "Body"),
        (("MessageSid", "SmsSid", "From", "Body"), "MessageSid, From, Body"),
    ],
)
def test_missing_fields_are_named(drop, named):
    params = {k: v for k, v in PARAMS.items() if k not in drop}
    with pytest.raises(ValueError, match=named):
        parse_inbound_sms(params)


@pytest.mark.parametrize("sid", ["  ", "XX123", "SM" + "a" * 100, "../../etc"])
def test_bad_message_sid_is_refused(sid):
    with pytest.raises(ValueError):
        parse_inbound_sms({**PARAMS, "MessageSid": sid, "SmsSid": sid})


def test_blank_sender_is_missing():
    with pytest.raises(ValueError, match="From"):
        parse_inbound_sms({**PARAMS, "From": "   "})


# -- status callbacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(TWILIO_STATUSES))
def test_every_twilio_status_is_understood(status):
    parsed = parse_status_callback({"MessageSid": "SM1", "MessageStatus": status.upper()})
    assert parsed.status == status


def test_status_callback_with_error_code_and_sms_fallbacks():
    parsed = parse_status_callback({"SmsSid": " SM2 ", "SmsStatus": "undelivered", "ErrorCode": "30003"})
    assert parsed == StatusCallback("SM2", "undelivered", "30003")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"MessageSid": "SM1", "MessageStatus": "exploded"}, "unknown message status"),
        ({"MessageSid": "SM1", "MessageStatus": ""}, "unknown message status"),
        ({"MessageSid": "SM1"}, "unknown message status"),
        ({"MessageStatus": "delivered"}, "MessageSid"),
        ({"MessageSid": "  ", "MessageStatus": "delivered"}, "MessageSid"),
    ],
)
def test_bad_status_callbacks_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        parse_status_callback(params)


# -- TwiML -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Thanks! <3 & see you",
        "Use code <b>A&B</b> > 10%",
        "感谢您的反馈！回T退订",
        "\"quoted\" and 'single'",
        "]]> <![CDATA[ x",
        "line one\nline two",
    ],
)
def test_twiml_escapes_and_round_trips(text):
    xml = twiml_message(text)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "<b>" not in xml and "<3" not in xml
    root = ET.fromstring(xml.encode())
    assert root.tag == "Response"
    [message] = list(root)
    assert message.tag == "Message" and message.text == text


@pytest.mark.parametrize("text", [None, ""])
def test_twiml_without_text_says_nothing(text):
    root = ET.fromstring(twiml_message(text).encode())
    assert root.tag == "Response" and list(root) == []


def test_twiml_drops_characters_xml_cannot_carry():
    root = ET.fromstring(twiml_message("ok\x00\x08 done\ufffe").encode())
    assert root[0].text == "ok done"

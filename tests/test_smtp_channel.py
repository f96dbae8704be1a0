"""The SMTP channel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from channels.base import OutboundMessage, SendOutcome
from channels.smtp_email import SmtpEmailChannel
from templating.render import render_message

FROM = "Huifang 回访 <news@shop.example>"
UNSUBSCRIBE = "<https://huifang.example.com/u/42-abcdef>"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """An aiosmtpd handler: records every accepted message; some addresses are refused."""

    REFUSALS = {
        "gone@example.com": "550 5.1.1 No such user",
        "busy@example.com": "451 4.3.0 Try again later",
        "closing@example.com": "421 4.3.2 Service shutting down",
    }

    def __init__(self):
        self.envelopes = []
        self.peers = []
        self.data_reply = "250 OK"
        self.hang_after_data = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.REFUSALS:
            return self.REFUSALS[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.hang_after_data.is_set():
            import asyncio

            await asyncio.sleep(3)
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return self.data_reply


@pytest.fixture
def smtp_server():
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture
def channel(smtp_server):
    controller, _ = smtp_server
    chan = SmtpEmailChannel(f"smtp://127.0.0.1:{controller.port}", from_address=FROM, timeout=1.0)
    yield chan
    chan.close()


def _message(to="li@example.com", **overrides) -> OutboundMessage:
    fields = dict(
        message_id=42,
        to=to,
        subject="您的登山杖还好用吗？ How is your pole?",
        body="伟您好：您的登山杖已使用400天。\nHi Wei, your pole is 400 days old.",
        html="<p>伟您好：您的<b>登山杖</b>已使用400天。</p><p>Hi Wei</p>",
        reply_to="reply+tok42@replies.shop.example",
        headers={"List-Unsubscribe": UNSUBSCRIBE, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    fields.update(overrides)
    return OutboundMessage(**fields)


def _received(handler, index=-1):
    envelope = handler.envelopes[index]
    return envelope, email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def test_multipart_message_with_headers_arrives_intact(channel, smtp_server):
    _, handler = smtp_server
    message = _message()
    result = channel.send(message)
    assert result.outcome is SendOutcome.SENT, result
    assert result.latency_ms > 0

    envelope, parsed = _received(handler)
    assert envelope.mail_from == "news@shop.example"
    assert envelope.rcpt_tos == ["li@example.com"]
    assert parsed["From"].addresses[0].addr_spec == "news@shop.example"
    assert parsed["From"].addresses[0].display_name == "Huifang 回访"
    assert parsed["To"] == "li@example.com"
    assert parsed["Subject"] == message.subject
    assert parsed["Reply-To"] == "reply+tok42@replies.shop.example"
    assert parsed["List-Unsubscribe"] == UNSUBSCRIBE
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] == result.provider_id
    assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith("@shop.example>")
    assert "huifang.42" in parsed["Message-ID"]
    assert parsed["Date"] is not None and parsed["Date"].datetime.tzinfo is not None

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().rstrip("\n") == message.body
    assert parts[1].get_content().rstrip("\n") == message.html
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # Nothing raw 8-bit on the wire: servers without 8BITMIME take it too.
    assert all(byte < 128 for byte in envelope.original_content)


def test_text_only_message_is_a_single_part(channel, smtp_server):
    _, handler = smtp_server
    assert channel.send(_message(html=None, reply_to=None, headers={})).outcome is SendOutcome.SENT
    _, parsed = _received(handler)
    assert parsed.get_content_type() == "text/plain"
    assert parsed["Reply-To"] is None and parsed["List-Unsubscribe"] is None


def test_rendered_email_round_trips_byte_for_byte(channel, smtp_server):
    _, handler = smtp_server
    rendered = render_message(
        "email",
        {
            "subject": "{{ member.preferred_name }}，您的{{ product.name }}还好用吗？",
            "html": "<html><head><style>p{color:#333}</style></head><body><p>{{ member.preferred_name }}您好</p>"
            "<p>{{ product.name }}</p></body></html>",
        },
        {"member": {"preferred_name": "伟"}, "product": {"name": "登山杖"}},
        locale="zh-CN",
    )
    message = _message(subject=rendered.subject, body=rendered.text, html=rendered.html)
    assert channel.send(message).outcome is SendOutcome.SENT
    _, parsed = _received(handler)
    assert parsed["Subject"] == rendered.subject
    assert parsed.get_body(("plain",)).get_content().rstrip("\n").encode() == rendered.text.encode()
    assert parsed.get_body(("html",)).get_content().rstrip("\n").encode() == rendered.html.encode()


def test_connection_is_reused_between_messages(channel, smtp_server):
    _, handler = smtp_server
    for i in range(3):
        assert channel.send(_message(message_id=i)).outcome is SendOutcome.SENT
    assert len(handler.envelopes) == 3
    assert len(set(handler.peers)) == 1
    assert len({_received(handler, i)[1]["Message-ID"] for i in range(3)}) == 3


def test_permanent_refusal_fails_and_the_connection_stays_usable(channel, smtp_server):
    _, handler = smtp_server
    result = channel.send(_message(to="gone@example.com"))
    assert result.outcome is SendOutcome.FAILED
    assert result.error_code == "550"
    assert "No such user" in result.error
    assert channel.send(_message()).outcome is SendOutcome.SENT
    assert [e.rcpt_tos for e in handler.envelopes] == [["li@example.com"]]


def test_temporary_refusal_is_retried(channel, smtp_server):
    _, handler = smtp_server
    result = channel.send(_message(to="busy@example.com"))
    assert result.outcome is SendOutcome.RETRY
    assert result.error_code == "451"
    assert handler.envelopes == []


def test_421_drops_the_connection_and_retries(channel):
    result = channel.send(_message(to="closing@example.com"))
    assert result.outcome is SendOutcome.RETRY and result.error_code == "421"
    assert channel.send(_message()).outcome is SendOutcome.SENT


@pytest.mark.parametrize(
    ("reply", "outcome"), [("554 5.7.1 Spam", SendOutcome.FAILED), ("452 Full", SendOutcome.RETRY)]
)
def test_refusal_after_data(channel, smtp_server, reply, outcome):
    _, handler = smtp_server
    handler.data_reply = reply
    result = channel.send(_message())
    assert result.outcome is outcome
    assert result.error_code == reply[:3]


def test_server_down_is_retried():
    chan = SmtpEmailChannel(f"smtp://127.0.0.1:{_free_port()}", from_address=FROM, timeout=1.0)
    result = chan.send(_message())
    assert result.outcome is SendOutcome.RETRY
    assert "cannot connect" in result.error
    chan.close()


def test_server_gone_between_messages_reconnects(smtp_server):
    controller, handler = smtp_server
    chan = SmtpEmailChannel(f"smtp://127.0.0.1:{controller.port}", from_address=FROM, timeout=1.0)
    assert chan.send(_message()).outcome is SendOutcome.SENT
    chan._smtp.sock.close()  # the server timed the idle connection out
    assert chan.send(_message()).outcome is SendOutcome.SENT
    assert len(handler.envelopes) == 2
    chan.close()


def test_no_answer_after_data_is_unknown_never_retried(smtp_server):
    controller, handler = smtp_server
    handler.hang_after_data.set()
    chan = SmtpEmailChannel(f"smtp://127.0.0.1:{controller.port}", from_address=FROM, timeout=0.3)
    result = chan.send(_message())
    assert result.outcome is SendOutcome.UNKNOWN
    assert "DATA" in result.error
    chan.close()


def test_header_injection_is_a_failed_message_not_an_exception(channel, smtp_server):
    _, handler = smtp_server
    result = channel.send(_message(headers={"List-Unsubscribe": "<https://x>\r\nBcc: victim@example.com"}))
    assert result.outcome is SendOutcome.FAILED
    assert "cannot build" in result.error
    assert handler.envelopes == []


def test_login_with_credentials_from_the_url():
    handler = Recorder()
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((mechanism, auth_data.login, auth_data.password))
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cr3t/+"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        chan = SmtpEmailChannel(f"smtp://mailer:s3cr3t%2F%2B@127.0.0.1:{controller.port}", from_address=FROM)
        assert chan.send(_message()).outcome is SendOutcome.SENT
        assert seen and seen[0][1:] == (b"mailer", b"s3cr3t/+")
        chan.close()
        bad = SmtpEmailChannel(
            f"smtp://mailer:wrong@127.0.0.1:{controller.port}", from_address=FROM, timeout=2
        )
        refused = bad.send(_message())
        assert refused.outcome is SendOutcome.RETRY and "535" in refused.error
        bad.close()
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("url", "port"),
    [("smtp://mail.example", 25), ("smtps://mail.example", 465), ("smtp+starttls://mail.example", 587)],
)
def test_url_defaults(url, port):
    assert SmtpEmailChannel(url, from_address=FROM).port == port


@pytest.mark.parametrize(("url", "sender"), [("http://x", FROM), ("smtp://", FROM), ("smtp://x", "nobody")])
def test_bad_settings_fail_fast(url, sender):
    with pytest.raises(ValueError):
        SmtpEmailChannel(url, from_address=sender)

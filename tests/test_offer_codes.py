"""Offer codes: a static code or one unique pool code per message, never shared, never missing."""

import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from campaigns.campaign import CampaignKind
from campaigns.codes_cli import codes
from campaigns.message import Message, MessageStatus
from campaigns.message_extras import TEST_OFFER_CODE, message_extras
from campaigns.offer_codes import OfferCode, OfferCodeError, assign_code, import_codes, pool_status
from campaigns.sending import SendConfig, claim_batch, send_claimed
from channels.file_channel import FileChannel
from cli import main
from database.appsession import sessionmaker_for
from tests.test_tracked_links import NOW, set_sms_body

CONFIG = SendConfig("https://huifang.example.com", "test-secret")


def _messages(session, factory, campaign, count):
    rows = []
    for _ in range(count):
        member = factory.member()
        rows.append(
            Message(
                campaign_id=campaign.id,
                member_id=member.id,
                subject_ref="b1",
                channel="sms",
                to_address=member.phone,
                due_at=NOW,
                send_after=NOW,
            )
        )
    session.add_all(rows)
    session.flush()
    return rows


def _offer_campaign(factory, **offer):
    campaign = factory.campaign(
        CampaignKind.BROADCAST, settings={"audience": {}, "offer": offer}, channels=["sms"]
    )
    set_sms_body(campaign, "Your code: {{ offer.code }}")
    return campaign


def test_import_skips_blanks_and_duplicates(session):
    assert import_codes(session, "SPRING", ["A1", " A2 ", "", "A1", "A3"]) == (3, 2)
    assert import_codes(session, "SPRING", ["A3", "A4"]) == (1, 1)  # A3 is already in the pool
    assert import_codes(session, "OTHER", ["A1"]) == (1, 0)  # unique within a pool, not across pools
    assert pool_status(session, "SPRING") == (4, 4)
    assert pool_status(session, "nope") is None


def test_assignment_is_per_message_and_a_resend_reuses_it(session, factory):
    import_codes(session, "P", ["C1", "C2"])
    campaign = _offer_campaign(factory, code_pool="P")
    first, second, third = _messages(session, factory, campaign, 3)
    code = assign_code(session, "P", first.id, first.member_id, NOW)
    assert assign_code(session, "P", first.id, first.member_id, NOW) == code
    other = assign_code(session, "P", second.id, second.member_id, NOW)
    assert {code, other} == {"C1", "C2"}
    row = session.scalar(select(OfferCode).where(OfferCode.code == code))
    assert (row.assigned_message_id, row.assigned_member_id, row.assigned_at) == (
        first.id,
        first.member_id,
        NOW,
    )
    with pytest.raises(OfferCodeError, match="no free codes"):
        assign_code(session, "P", third.id, third.member_id, NOW)
    with pytest.raises(OfferCodeError, match="no code pool"):
        assign_code(session, "missing", third.id, third.member_id, NOW)


def test_static_code_and_test_sends_use_no_pool_code(session, factory):
    import_codes(session, "P", ["C1"])
    static = _offer_campaign(factory, code="SUMMER10", code_pool="P")
    pooled = _offer_campaign(factory, code_pool="P")
    (message,) = _messages(session, factory, pooled, 1)
    member = factory.member()
    extras = dict(message_id=message.id, public_url=CONFIG.public_url, secret_key="k")
    assert message_extras(session, static, member, **extras)["offer"]["code"] == "SUMMER10"
    assert message_extras(session, pooled, member, **extras, test=True)["offer"]["code"] == TEST_OFFER_CODE
    assert pool_status(session, "P") == (1, 1)


def _send(session, tmp_path):
    ids = claim_batch(session, "sms", 100, NOW)
    session.commit()
    return send_claimed(session, FileChannel("sms", tmp_path / "out"), ids, CONFIG, now=NOW)


def test_send_puts_the_code_in_the_body_and_fails_clearly_when_the_pool_runs_out(session, factory, tmp_path):
    import_codes(session, "P", ["C1", "C2"])
    campaign = _offer_campaign(factory, code_pool="P")
    rows = _messages(session, factory, campaign, 3)
    session.commit()
    report = _send(session, tmp_path)
    assert report.counts == {"sent": 2, "failed": 1}
    for row in rows:
        session.refresh(row)
    sent = [r for r in rows if r.status is MessageStatus.SENT]
    assert sorted(r.body.splitlines()[0] for r in sent) == ["Your code: C1", "Your code: C2"]
    (failed,) = [r for r in rows if r.status is MessageStatus.FAILED]
    assert failed.error == "offer: code pool 'P' has no free codes left" and failed.body is None
    assert not any("failed" in p.read_text() for p in (tmp_path / "out").iterdir())


def test_cli_imports_a_file(app, session, tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code\nX1\nX2\n\nX2\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(codes, ["import", "AUTUMN", str(path)])
    assert result.exit_code == 0, result.output
    assert "added 2 codes, skipped 2" in result.output and "2 of 2 codes free" in result.output
    assert "2 of 2 codes free" in runner.invoke(codes, ["status", "AUTUMN"]).output
    assert runner.invoke(codes, ["status", "nope"]).exit_code != 0
    assert "  codes " in CliRunner().invoke(main, ["--help"]).output


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_workers_never_hand_out_the_same_code(app, session, factory):
    import_codes(session, "RACE", [f"R{i:03d}" for i in range(30)])
    campaign = _offer_campaign(factory, code_pool="RACE")
    messages = [(m.id, m.member_id) for m in _messages(session, factory, campaign, 40)]
    session.commit()
    workers = 6
    barrier = threading.Barrier(workers)
    got: list[tuple[int, str]] = []
    exhausted: list[int] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def worker(share):
        s = sessionmaker_for(app)()
        try:
            barrier.wait()
            for message_id, member_id in share:
                try:
                    code = assign_code(s, "RACE", message_id, member_id, NOW)
                except OfferCodeError:
                    s.rollback()
                    with lock:
                        exhausted.append(message_id)
                    continue
                s.commit()
                with lock:
                    got.append((message_id, code))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(messages[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    codes = [code for _, code in got]
    assert len(codes) == 30 == len(set(codes)) and len(exhausted) == 10
    session.expire_all()
    assigned = session.scalars(select(OfferCode).where(OfferCode.assigned_message_id.is_not(None))).all()
    assert sorted((c.assigned_message_id, c.code) for c in assigned) == sorted(got)

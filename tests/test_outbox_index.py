"""The claim reads the outbox through its partial queue index, in order, without sorting the backlog."""

import datetime as dt

from sqlalchemy import insert, select, text

from campaigns.message import Message, MessageStatus, in_states
from campaigns.sending import SENDABLE, claim_batch

NOW = dt.datetime(2026, 6, 15, 4, 0)


def _backlog(session, rows: int = 3000) -> None:
    states = [MessageStatus.PENDING, MessageStatus.SENT, MessageStatus.DEFERRED, MessageStatus.DELIVERED]
    session.execute(
        insert(Message),
        [
            {
                "member_id": n,
                "subject_ref": f"p{n}",
                "channel": "sms" if n % 3 else "email",
                "to_address": f"+4477{n:08d}",
                "status": states[n % 4],
                "send_after": NOW - dt.timedelta(minutes=n % 500),
            }
            for n in range(rows)
        ],
    )
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        # The PostgreSQL test database is shared and truncated between tests: without fresh
        # statistics the planner sees the previous test's table.
        session.execute(text("ANALYZE messages"))
        session.commit()


def _plan(session, stmt) -> str:
    bind = session.get_bind()
    sql = str(stmt.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True}))
    if bind.dialect.name == "postgresql":
        session.execute(text("ANALYZE messages"))
        return "\n".join(session.scalars(text("EXPLAIN " + sql)))
    return "\n".join(str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))


def test_the_claim_query_walks_the_due_index_in_order(session):
    _backlog(session)
    due = (
        select(Message.id)
        .where(in_states(*SENDABLE), Message.channel == "sms", Message.send_after <= NOW)
        .order_by(Message.send_after, Message.id)
        .limit(200)
    )
    plan = _plan(session, due)
    assert "ix_messages_due" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan  # no sort of the whole backlog


def test_claims_take_the_oldest_due_rows_of_their_channel_first(session):
    _backlog(session, rows=400)
    ids = claim_batch(session, "sms", 50, NOW)
    session.commit()
    claimed = session.execute(
        select(Message.send_after, Message.id, Message.channel).where(Message.id.in_(ids))
    )
    rows = sorted(claimed)
    waiting = session.execute(
        select(Message.send_after, Message.id)
        .where(in_states(*SENDABLE), Message.channel == "sms")
        .order_by(Message.send_after, Message.id)
        .limit(1)
    ).first()
    assert len(rows) == 50 and {r.channel for r in rows} == {"sms"}
    assert (rows[-1].send_after, rows[-1].id) <= tuple(waiting)  # nothing older was left behind

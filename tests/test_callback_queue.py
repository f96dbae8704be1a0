"""The callback queue: one task per complaint, atomic claims, outcomes with backoff, holds released."""

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from accounts.staff import Role
from database.appsession import sessionmaker_for
from membership.member import ContactHold
from service.queue import claim_next, log_outcome
from service.task import CallLog, CallTask, TaskOutcome, TaskStatus

NOW = dt.datetime(2026, 6, 15, 4, 0)


def _task(session, member, **kw):
    kw.setdefault("due_at", NOW + dt.timedelta(hours=24))
    kw.setdefault("next_attempt_at", NOW)
    task = CallTask(member_id=member.id, reason="unsatisfied", **kw)
    session.add(task)
    session.flush()
    session.add(ContactHold(member_id=member.id, reason="open complaint", source_ref=f"task:{task.id}"))
    session.flush()
    return task


def test_claim_next_takes_the_most_urgent_and_no_answer_reschedules(session, factory):
    agent = factory.staff(Role.AGENT)
    member = factory.member()
    later = _task(session, member)
    urgent = _task(session, member, due_at=NOW + dt.timedelta(hours=1))

    claimed = claim_next(session, agent.id, NOW)
    assert claimed.id == urgent.id and claimed.status is TaskStatus.CLAIMED and claimed.claimed_by == agent.id
    assert claim_next(session, agent.id, NOW).id == later.id
    assert claim_next(session, agent.id, NOW) is None

    log_outcome(session, urgent.id, agent.id, TaskOutcome.NO_ANSWER, "voicemail", now=NOW)
    assert urgent.status is TaskStatus.RESCHEDULED and urgent.next_attempt_at == NOW + dt.timedelta(hours=2)
    assert claim_next(session, agent.id, NOW + dt.timedelta(minutes=30)) is None  # not yet due again
    again = claim_next(session, agent.id, NOW + dt.timedelta(hours=3))
    assert again.id == urgent.id

    log_outcome(
        session,
        urgent.id,
        agent.id,
        TaskOutcome.RESOLVED,
        "sent a new rubber",
        now=NOW,
        root_cause="wore_out_early",
    )
    assert urgent.status is TaskStatus.RESOLVED and urgent.closed_at == NOW
    hold = session.scalars(select(ContactHold).where(ContactHold.source_ref == f"task:{urgent.id}")).one()
    assert hold.released_at == NOW
    assert [log.outcome for log in session.scalars(select(CallLog).where(CallLog.task_id == urgent.id))] == [
        "no_answer",
        "resolved",
    ]
    with pytest.raises(ValueError, match="already resolved"):
        log_outcome(session, urgent.id, agent.id, TaskOutcome.RESOLVED, now=NOW, root_cause="other")


def test_abandoned_claim_expires(session, factory):
    agent, other = factory.staff(Role.AGENT), factory.staff(Role.AGENT)
    task = _task(session, factory.member())
    assert claim_next(session, agent.id, NOW).id == task.id
    assert claim_next(session, other.id, NOW + dt.timedelta(minutes=10)) is None
    assert claim_next(session, other.id, NOW + dt.timedelta(hours=1)).id == task.id


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_claims_never_share_a_task(app, session, factory):
    agents = [factory.staff(Role.AGENT) for _ in range(6)]
    member = factory.member()
    for _ in range(20):
        _task(session, member)
    session.commit()
    barrier = threading.Barrier(len(agents))
    claims: dict[int, list[int]] = {}
    errors = []

    def agent_loop(agent_id):
        s = sessionmaker_for(app)()
        got = []
        try:
            barrier.wait()
            while (task := claim_next(s, agent_id, NOW)) is not None:
                got.append(task.id)
                s.commit()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            s.close()
        claims[agent_id] = got

    threads = [threading.Thread(target=agent_loop, args=(a.id,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    all_claims = [tid for got in claims.values() for tid in got]
    assert len(all_claims) == 20 == len(set(all_claims))

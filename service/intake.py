"""The reply pipeline end to end: process a stored reply, then open a call task if it was a complaint."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from campaigns.replies import ReplyOutcome, process_inbound
from service.queue import open_task_for_response


def handle_reply(
    session: Session,
    inbound_id: int,
    now: dt.datetime | None = None,
    secret_key: str = "",
    *,
    member_id: int | None = None,
) -> tuple[ReplyOutcome, int | None]:
    """Process one stored reply idempotently; returns the outcome and the call task id, if any.

    ``member_id`` attributes an unmatched reply to a member by hand (see ``process_inbound``).
    """
    outcome = process_inbound(session, inbound_id, now, secret_key, member_id=member_id)
    task_id = None
    if outcome.survey_response_id and outcome.intent == "unsatisfied":
        task_id = open_task_for_response(session, outcome.survey_response_id, now)
    return outcome, task_id

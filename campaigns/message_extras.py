"""The parts of a message's template context that need the database or the message itself.

`message_context` gives the plain member/item values; this adds tracked links (``track``, ``links``),
the offer with its code (``offer.code``) and interest advice (``advice``). Preview and test send pass
``test=True``: links still redirect but record no click, and no pool code is used up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from campaigns.advice import advice_for
from campaigns.offer_codes import assign_code
from templating.links import LinkTracker

# Shown instead of a pool code in previews and test sends, so a test never consumes a real code.
TEST_OFFER_CODE = "TESTCODE"


def message_extras(
    session: Session,
    campaign,
    member,
    *,
    message_id: int | None,
    public_url: str,
    secret_key: str,
    test: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """``track``, ``links``, ``offer`` and ``advice`` for one message; OfferCodeError if no code is left.

    A real send (``test=False``) with a ``code_pool`` offer assigns the message its code (the caller
    commits); asking again for the same message returns the same code.
    """
    track = LinkTracker(public_url, secret_key, message_id, test=test)
    settings = campaign.settings or {}
    offer = dict(settings.get("offer") or {})
    pool = offer.get("code_pool")
    if pool and not offer.get("code"):
        if test or message_id is None:
            offer["code"] = TEST_OFFER_CODE
        else:
            offer["code"] = assign_code(session, pool, message_id, member.id, now)
    return {
        "track": track,
        "links": {str(name): track(url) for name, url in (settings.get("links") or {}).items()},
        "offer": offer,
        "advice": advice_for(session, member.interests or [], member.locale),
    }

"""What we answer to a reply, per intent and locale (the TwiML body); opt-outs get nothing, the carrier confirms."""

from __future__ import annotations

from channels.reply_parser import ReplyIntent

_TEXTS = {
    "en": {
        ReplyIntent.SATISFIED: "Thank you for your feedback!",
        ReplyIntent.UNSATISFIED: "We are sorry to hear that. A member of our service team will call you soon.",
        ReplyIntent.UNCLEAR: "Sorry, we did not understand. Reply 1 if you are satisfied, 2 if not.",
        ReplyIntent.HELP: "Huifang member service: reply 1 satisfied, 2 not satisfied, STOP to opt out.",
        ReplyIntent.OPT_IN: "You are subscribed again. Reply STOP to opt out.",
    },
    "zh": {
        ReplyIntent.SATISFIED: "感谢您的反馈！",
        ReplyIntent.UNSATISFIED: "很抱歉给您带来不好的体验，我们的客服会尽快致电您。",
        ReplyIntent.UNCLEAR: "抱歉，我们没有理解您的回复。满意请回复1，不满意请回复2。",
        ReplyIntent.HELP: "会员服务：回复1满意，回复2不满意，回T退订。",
        ReplyIntent.OPT_IN: "您已重新订阅。回T退订。",
    },
}


def acknowledgement(intent: ReplyIntent, locale: str | None) -> str | None:
    """The reply text for ``intent`` in the member's language (English fallback); None for opt-outs."""
    texts = _TEXTS.get((locale or "en").split("-")[0].lower(), _TEXTS["en"])
    return texts.get(intent)

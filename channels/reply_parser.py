"""What a customer's free-text reply means: satisfied, unsatisfied, opt-out, opt-in, help or unclear.

Replies arrive as typed on a phone: full-width digits, emoji, "2 坏了", "STOP!!", "不满意，鞋底开胶".
The parser is pure (no database) and total: any string gives an answer, never an exception.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass


class ReplyIntent(enum.StrEnum):
    SATISFIED = "satisfied"
    UNSATISFIED = "unsatisfied"
    UNCLEAR = "unclear"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


@dataclass(frozen=True)
class ParsedReply:
    intent: ReplyIntent
    comment: str  # whatever the customer wrote after the answer ("2 the sole came off" → "the sole came off")
    normalized: str


# Carrier-standard keywords (CTIA / Twilio advanced opt-out) plus the Chinese conventions (回T, 退订).
_OPT_OUT_WORDS = {
    "stop",
    "stopall",
    "stop all",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "optout",
    "opt out",
    "opt-out",
    "revoke",
    "t",
    "td",
    "回t",
    "回td",
    "退订",
    "取消",
    "取消订阅",
    "退出",
    "不要再发",
    "别再发了",
    "别发了",
}
_OPT_OUT_PHRASES = ("退订", "取消订阅", "不要再发", "别再发", "别发了", "unsubscribe")
_OPT_IN_WORDS = {"start", "unstop", "yes", "subscribe", "订阅", "重新订阅"}
_HELP_WORDS = {"help", "info", "帮助", "?", "？"}

# Order matters: every "unsatisfied" phrase contains a "satisfied" phrase (不满意 ⊃ 满意), so the
# negative forms are tried first.
_UNSATISFIED = (
    "不满意",
    "不太满意",
    "很不满",
    "不满",
    "不好",
    "差评",
    "太差",
    "很差",
    "坏了",
    "投诉",
    "not satisfied",
    "unsatisfied",
    "dissatisfied",
    "not happy",
    "unhappy",
    "not good",
    "bad",
    "terrible",
    "awful",
    "poor",
    "broken",
    "no",
    "👎",
    "😡",
    "😠",
    "☹",
    "🙁",
    "😞",
)
_SATISFIED = (
    "非常满意",
    "满意",
    "很好",
    "好评",
    "不错",
    "挺好",
    "好的",
    "satisfied",
    "very good",
    "good",
    "great",
    "happy",
    "excellent",
    "fine",
    "ok",
    "okay",
    "thanks",
    "thank you",
    "👍",
    "😀",
    "😊",
    "🙂",
    "❤",
)

_LEADING_DIGIT = re.compile(
    r"^\s*(?:[(\[#]?\s*)([12])(?![0-9])(?!\.[0-9])\s*[)\].:：、,，\-—!！。]*\s*(.*)$", re.S
)
_TRAILING_PUNCT = " \t\r\n.!！。?？,，;；:：~～-—'\"“”‘’()（）[]【】"
_WORDISH = re.compile(r"[a-z]")


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII), lower case, collapsed whitespace."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return " ".join(folded.split())


def parse_reply(text: str, *, opted_out: bool = False) -> ParsedReply:
    """Classify one reply. ``opted_out`` makes a bare YES mean "subscribe me again"."""
    norm = normalize(text)
    bare = norm.strip(_TRAILING_PUNCT)
    if _is_opt_out(bare):
        return ParsedReply(ReplyIntent.OPT_OUT, "", norm)
    if bare in _OPT_IN_WORDS and (bare != "yes" or opted_out):
        return ParsedReply(ReplyIntent.OPT_IN, "", norm)
    if bare in _HELP_WORDS:
        return ParsedReply(ReplyIntent.HELP, "", norm)
    digit = _LEADING_DIGIT.match(norm)
    if digit:
        intent = ReplyIntent.SATISFIED if digit.group(1) == "1" else ReplyIntent.UNSATISFIED
        return ParsedReply(intent, _comment(digit.group(2)), norm)
    intent = _keyword_intent(bare)
    if intent is not None:
        # A bare keyword carries no comment; anything longer is kept whole for the agent to read.
        comment = "" if bare in _UNSATISFIED or bare in _SATISFIED else _comment(text)
        return ParsedReply(intent, comment, norm)
    return ParsedReply(ReplyIntent.UNCLEAR, _comment(text), norm)


def _is_opt_out(bare: str) -> bool:
    if bare in _OPT_OUT_WORDS:
        return True
    # A short message that is mostly an opt-out phrase ("请退订", "退订谢谢", "STOP please") still counts;
    # a long complaint that merely mentions the word is for a human to read.
    if len(bare) <= 12 and any(p in bare for p in _OPT_OUT_PHRASES):
        return True
    first = bare.split(" ", 1)[0].strip(_TRAILING_PUNCT)
    return first in {"stop", "unsubscribe", "stopall"}


def _keyword_intent(bare: str) -> ReplyIntent | None:
    """The earliest keyword wins; at equal positions the negative one (it is the longer match)."""
    best: tuple[int, int, ReplyIntent] | None = None
    for words, intent in ((_UNSATISFIED, ReplyIntent.UNSATISFIED), (_SATISFIED, ReplyIntent.SATISFIED)):
        for word in words:
            pos = _find_word(bare, word)
            if pos < 0:
                continue
            candidate = (pos, -len(word), intent)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
    # "not satisfied" hides "satisfied" at a later position; "不满意" hides "满意" one character on.
    return best[2] if best else None


def _find_word(text: str, word: str) -> int:
    """Position of ``word`` in ``text``; Latin words must stand alone ("no" is not in "know")."""
    if not _WORDISH.search(word):
        return text.find(word)
    match = re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text)
    return match.start() if match else -1


def _comment(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text or "").split()).strip(" ,，.。:：-—")

"""What a customer's free-text reply means: satisfied, unsatisfied, opt-out, opt-in, help or unclear.

Replies arrive as typed on a phone: full-width digits, emoji, "2 坏了", "STOP!!", "不满意，鞋底开胶".
The parser is pure (no database) and total: any string gives an answer, never an exception.
Opt-out wins over everything else: ignoring one is a compliance failure, a false one costs a customer.
"""

from __future__ import annotations

import enum
import functools
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
# These count when they are the whole reply (give or take punctuation and a "please"/"谢谢").
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
# Unambiguous enough to count first, last, or anywhere in a short reply ("2 STOP", "please stop").
_STRONG_OPT_OUT_TOKENS = {"stop", "stopall", "unsubscribe", "optout", "td", "回t", "回td", "退订"}
_SHORT_REPLY_TOKENS = 4
# Phrases that mean "no more messages" wherever they appear in a reply of ordinary length.
_OPT_OUT_PHRASES = (
    "退订",
    "取消订阅",
    "不要再发",
    "别再发",
    "别发了",
    "不要发了",
    "unsubscribe",
    "stop texting",
    "stop sending",
    "stop messaging",
    "stop contacting",
    "opt me out",
    "remove me from",
)
_OPT_OUT_PHRASE_MAX_CHARS = 60
_NEGATED_STOP = re.compile(r"(?:n't|dont|do not|never|cannot|not)\s+stop\b")
_POLITE = re.compile(r"\b(?:please|pls|plz|thank you|thanks|thx|now)\b|请|谢谢|谢了")
_OPT_IN_WORDS = {"start", "unstop", "yes", "subscribe", "订阅", "重新订阅"}
_HELP_WORDS = {"help", "info", "帮助"}
_NUMBER_WORDS = {"one": "1", "一": "1", "壹": "1", "two": "2", "二": "2", "贰": "2"}

# Keyword matching picks non-overlapping matches, longest first at each position, so "不满意" hides
# "满意", "not bad" hides "bad", "no problem" hides "no". Any negative match makes the reply negative:
# a customer who writes "great shoes but the sole broke" should get a call.
_UNSATISFIED = (
    "不满意",
    "不太满意",
    "很不满",
    "不满",
    "不好",
    "差评",
    "太差",
    "很差",
    "质量差",
    "差",
    "坏了",
    "坏",
    "破了",
    "开胶",
    "失望",
    "垃圾",
    "投诉",
    "退货",
    "退款",
    "有问题",
    "出问题",
    "not satisfied",
    "unsatisfied",
    "dissatisfied",
    "not happy",
    "unhappy",
    "not good",
    "disappointed",
    "bad",
    "terrible",
    "awful",
    "poor",
    "broke",
    "broken",
    "damaged",
    "defective",
    "faulty",
    "not working",
    "stopped working",
    "doesn't work",
    "complaint",
    "refund",
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
    "不差",
    "挺好",
    "好的",
    "还行",
    "还可以",
    "没问题",
    "satisfied",
    "very good",
    "good",
    "great",
    "happy",
    "excellent",
    "perfect",
    "love it",
    "fine",
    "ok",
    "okay",
    "not bad",
    "not too bad",
    "no problem",
    "no problems",
    "no complaints",
    "no issues",
    "thanks",
    "thank you",
    "👍",
    "😀",
    "😊",
    "🙂",
    "❤",
)
# Phrases that contain a keyword but say nothing about satisfaction.
_NEUTRAL = ("不好意思", "差不多", "good morning", "good afternoon", "good evening", "good night", "no idea")
_KEYWORDS = sorted(
    [(w, ReplyIntent.UNSATISFIED) for w in _UNSATISFIED]
    + [(w, ReplyIntent.SATISFIED) for w in _SATISFIED]
    + [(w, None) for w in _NEUTRAL],
    key=lambda pair: -len(pair[0]),
)
_EN_NEGATION = re.compile(
    r"(?:\bnot|n't|\bnever|\bhardly|\bnot very|\bnot so|\bnot too|\bnot really|\bnot that)\s+$"
)
_ZH_NEGATORS = ("不", "没", "未", "别")

_LEADING_DIGIT = re.compile(
    r"^\s*(?:(?:我选择?|选择?|回复|答案是?|my answer is|answer|option|choice)\s*[:：]?\s*)?"
    r"(?:[(\[#]?\s*)([12])(?![0-9])(?![.,][0-9])\s*[)\].:：、,，\-—!！。]*\s*(.*)$",
    re.S | re.I,
)
# "1 or 2?", "1/2", "1 2": the customer named both answers.
_BOTH_DIGITS = re.compile(r"^(?:or|and|/|\\|或者?|还是|和|-|~)?\s*[12](?![0-9])", re.I)
_TRAILING_PUNCT = " \t\r\n.!！。?？,，;；:：~～-—'\"“”‘’()（）[]【】…"
_TOKEN_SPLIT = re.compile(r"[\s.,!?;:，。！？；：、~～\-—()（）\[\]【】\"'“”‘’…/]+")
_WORDISH = re.compile(r"[a-z]")
# Invisible characters phones insert: emoji variation selectors, keycap marks, skin tones, zero-width.
_INVISIBLE = re.compile("[\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff]")


def _fold(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII), invisible marks dropped, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text or "")
    folded = _INVISIBLE.sub("", folded).replace("’", "'").replace("‘", "'")
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return " ".join(folded.split())


def normalize(text: str) -> str:
    """The folded text in lower case: what the parser matches keywords against."""
    return _fold(text).casefold()


def parse_reply(text: str, *, opted_out: bool = False) -> ParsedReply:
    """Classify one reply. ``opted_out`` makes a bare YES mean "subscribe me again"."""
    folded = _fold(text)
    norm = folded.casefold()
    bare = norm.strip(_TRAILING_PUNCT)
    if _is_opt_out(bare):
        return ParsedReply(ReplyIntent.OPT_OUT, "", norm)
    polite_free = _without_polite(bare)
    if polite_free in _OPT_IN_WORDS and (polite_free != "yes" or opted_out):
        return ParsedReply(ReplyIntent.OPT_IN, "", norm)
    if polite_free in _HELP_WORDS:
        return ParsedReply(ReplyIntent.HELP, "", norm)
    digit = _LEADING_DIGIT.match(_NUMBER_WORDS.get(bare, folded))
    if digit:
        rest = digit.group(2)
        if _BOTH_DIGITS.match(rest):
            return ParsedReply(ReplyIntent.UNCLEAR, _comment(folded), norm)
        intent = ReplyIntent.SATISFIED if digit.group(1) == "1" else ReplyIntent.UNSATISFIED
        return ParsedReply(intent, _comment(rest), norm)
    intent, leftover = _keyword_intent(bare)
    if intent is not None:
        # Only keywords and punctuation: no comment. Anything more is kept whole for the agent to read.
        comment = "" if not leftover.strip(_TRAILING_PUNCT) else _comment(folded)
        return ParsedReply(intent, comment, norm)
    return ParsedReply(ReplyIntent.UNCLEAR, _comment(folded), norm)


def _without_polite(bare: str) -> str:
    return " ".join(_POLITE.sub(" ", bare).split()).strip(_TRAILING_PUNCT)


def _is_opt_out(bare: str) -> bool:
    if bare in _OPT_OUT_WORDS or _without_polite(bare) in _OPT_OUT_WORDS:
        return True
    if len(bare) <= _OPT_OUT_PHRASE_MAX_CHARS and any(p in bare for p in _OPT_OUT_PHRASES):
        return True
    if _NEGATED_STOP.search(bare):
        return False
    tokens = [t for t in _TOKEN_SPLIT.split(bare) if t]
    if not tokens:
        return False
    if tokens[0] in _STRONG_OPT_OUT_TOKENS or tokens[-1] in _STRONG_OPT_OUT_TOKENS:
        return True
    return len(tokens) <= _SHORT_REPLY_TOKENS and any(t in _STRONG_OPT_OUT_TOKENS for t in tokens)


def _keyword_intent(bare: str) -> tuple[ReplyIntent | None, str]:
    """The intent the keywords in ``bare`` add up to, and the text left once they are removed."""
    taken = [False] * len(bare)
    found: list[tuple[int, ReplyIntent]] = []
    for word, intent in _KEYWORDS:
        for start in _find_all(bare, word):
            end = start + len(word)
            if any(taken[start:end]):
                continue
            taken[start:end] = [True] * (end - start)
            if intent is not None:
                found.append((start, intent))
    intents = set()
    for start, intent in found:
        if intent is ReplyIntent.SATISFIED and _negated(bare, start):
            intent = ReplyIntent.UNSATISFIED
        intents.add(intent)
    leftover = "".join(ch for ch, used in zip(bare, taken, strict=True) if not used)
    if ReplyIntent.UNSATISFIED in intents:
        return ReplyIntent.UNSATISFIED, leftover
    if ReplyIntent.SATISFIED in intents:
        return ReplyIntent.SATISFIED, leftover
    return None, bare


def _negated(bare: str, start: int) -> bool:
    """ "not great", "isn't good", "不是很满意", "没那么好"."""
    before = bare[:start]
    if _EN_NEGATION.search(before):
        return True
    return any(neg in before[-3:] for neg in _ZH_NEGATORS)


def _find_all(text: str, word: str) -> list[int]:
    """Positions of ``word`` in ``text``; Latin words must stand alone ("no" is not in "know")."""
    if word not in text:  # most keywords are absent: a substring test saves a regex scan per keyword
        return []
    return [m.start() for m in _keyword_pattern(word).finditer(text)]


@functools.cache
def _keyword_pattern(word: str) -> re.Pattern[str]:
    if not _WORDISH.search(word):
        return re.compile(re.escape(word))
    return re.compile(rf"(?<![a-z']){re.escape(word)}(?![a-z'])")


def _comment(text: str) -> str:
    return " ".join((text or "").split()).strip(" ,，.。:：-—、")

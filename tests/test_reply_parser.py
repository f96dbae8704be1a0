"""The reply parser on real-looking replies, in English and Chinese, as typed on a phone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.reply_parser import ParsedReply, ReplyIntent, parse_reply

S = ReplyIntent.SATISFIED
U = ReplyIntent.UNSATISFIED
X = ReplyIntent.UNCLEAR
OUT = ReplyIntent.OPT_OUT
IN = ReplyIntent.OPT_IN
HELP = ReplyIntent.HELP

# (reply, intent, comment) — comment None means "not checked".
CASES: list[tuple[str, ReplyIntent, str | None]] = [
    # bare digits, ASCII and full width (NFKC), with the punctuation people add
    ("1", S, ""),
    ("2", U, ""),
    ("１", S, ""),
    ("２", U, ""),
    ("1.", S, ""),
    ("2.", U, ""),
    (" 1 ", S, ""),
    ("\t2\n", U, ""),
    ("1!", S, ""),
    ("2！", U, ""),
    ("2。", U, ""),
    ("１。", S, ""),
    ("(2)", U, ""),
    ("（２）", U, ""),
    ("[1]", S, ""),
    ("#2", U, ""),
    ("2)", U, ""),
    ("①", S, ""),
    ("②", U, ""),
    ("1️⃣", S, ""),
    ("2️⃣", U, ""),
    ("one", S, ""),
    ("two", U, ""),
    ("Two.", U, ""),
    ("二", U, ""),
    ("一", S, ""),
    # digit plus free text: the text is the comment, case and wording kept
    ("1 满意", S, "满意"),
    ("1 thanks!", S, "thanks!"),
    ("1，很好", S, "很好"),
    ("1:ok", S, "ok"),
    ("1-great", S, "great"),
    ("1 but the box was damaged", S, "but the box was damaged"),
    ("2 坏了", U, "坏了"),
    ("２ 坏了", U, "坏了"),
    ("2、质量差", U, "质量差"),
    ("2 the handle broke", U, "the handle broke"),
    ("2 The Handle Broke", U, "The Handle Broke"),
    ("2. The sole came off after a week", U, "The sole came off after a week"),
    ("2 good service but shoe broke", U, "good service but shoe broke"),
    ("2, 鞋底开胶了", U, "鞋底开胶了"),
    ("2：拉链坏了，希望换一个", U, "拉链坏了,希望换一个"),
    ("2    too   small ", U, "too small"),
    ("1 😊", S, "😊"),
    ("2 👎", U, "👎"),
    ("1 非常满意，谢谢", S, "非常满意,谢谢"),
    ("我选2", U, ""),
    ("选择：1", S, ""),
    ("回复2 鞋子坏了", U, "鞋子坏了"),
    ("My answer is 2", U, ""),
    ("option 1, great", S, "great"),
    # Chinese words; 不满意 must not read as 满意
    ("满意", S, ""),
    ("非常满意", S, ""),
    ("非常满意！", S, ""),
    ("很满意", S, None),
    ("挺好的", S, None),
    ("不错", S, ""),
    ("还不错", S, None),
    ("好评", S, ""),
    ("没问题", S, ""),
    ("还行", S, ""),
    ("不满意", U, ""),
    ("不满意！", U, ""),
    ("很不满意", U, None),
    ("不太满意", U, ""),
    ("不是很满意", U, "不是很满意"),
    ("不满意，鞋底开胶", U, "不满意,鞋底开胶"),
    ("非常不满意", U, None),
    ("差评", U, ""),
    ("质量太差了", U, None),
    ("东西坏了", U, "东西坏了"),
    ("鞋底开胶", U, None),
    ("我要投诉", U, None),
    ("满意 不满意", U, None),
    ("不好", U, ""),
    ("失望", U, ""),
    ("一般", X, "一般"),
    ("不好意思 1", X, "不好意思 1"),
    ("差不多吧", X, None),
    # English words and negation
    ("satisfied", S, ""),
    ("Satisfied!", S, ""),
    ("SATISFIED", S, ""),
    ("very satisfied", S, None),
    ("great", S, ""),
    ("great!", S, ""),
    ("Great product", S, "Great product"),
    ("good", S, ""),
    ("Good job", S, "Good job"),
    ("ok", S, ""),
    ("OK", S, ""),
    ("okay", S, ""),
    ("fine", S, ""),
    ("happy", S, ""),
    ("very happy", S, "very happy"),
    ("excellent", S, ""),
    ("perfect", S, ""),
    ("thanks", S, ""),
    ("thank you!", S, ""),
    ("no problem", S, ""),
    ("not bad", S, ""),
    ("no complaints", S, ""),
    ("love it", S, ""),
    ("not satisfied", U, ""),
    ("Not satisfied.", U, ""),
    ("I am not satisfied", U, "I am not satisfied"),
    ("I'm not satisfied with the boots", U, None),
    ("NOT SATISFIED", U, ""),
    ("unsatisfied", U, ""),
    ("dissatisfied", U, ""),
    ("unhappy", U, ""),
    ("not happy", U, ""),
    ("not good", U, ""),
    ("not great", U, "not great"),
    ("isn't good", U, None),
    ("it’s not very good", U, None),
    ("not ok", U, None),
    ("bad", U, ""),
    ("very bad", U, "very bad"),
    ("terrible", U, ""),
    ("awful service", U, None),
    ("broken", U, ""),
    ("it broke", U, None),
    ("great shoes but the sole broke", U, None),
    ("thanks but the zipper is broken", U, None),
    ("no", U, ""),
    ("No", U, ""),
    ("NO!", U, ""),
    ("good morning", X, None),
    ("I know", X, "I know"),
    ("nope", X, "nope"),
    # emoji
    ("👍", S, ""),
    ("👍👍", S, ""),
    ("👍🏻", S, ""),
    ("😊", S, ""),
    ("❤️", S, ""),
    ("👎", U, ""),
    ("😡", U, ""),
    ("☹️", U, ""),
    ("🙁", U, ""),
    ("🤔", X, "🤔"),
    # unclear: other numbers, both answers, questions, nothing
    ("", X, ""),
    ("   ", X, ""),
    ("\u200b", X, ""),
    ("12", X, "12"),
    ("21", X, "21"),
    ("1.5", X, "1.5"),
    ("2.5", X, "2.5"),
    ("10", X, "10"),
    ("0", X, "0"),
    ("3", X, "3"),
    ("-1", X, None),
    ("1,000", X, None),
    ("1 or 2?", X, "1 or 2?"),
    ("1 2", X, "1 2"),
    ("1/2", X, "1/2"),
    ("1还是2", X, None),
    ("?", X, "?"),
    ("？", X, "?"),
    ("why", X, "why"),
    ("tell me more", X, "tell me more"),
    ("who is this", X, None),
    ("yes", X, "yes"),
    ("YES", X, "YES"),
    ("yes please", X, None),
    ("s t o p", X, None),
    ("end of story", X, None),
    ("cancel my order", X, None),
    ("i want to cancel", X, None),
    ("help me", X, None),
    # opt-out: carrier keywords and Chinese conventions win over everything
    ("STOP", OUT, ""),
    ("stop", OUT, ""),
    ("Stop", OUT, ""),
    ("STOP!!", OUT, ""),
    ("STOP.", OUT, ""),
    ("ＳＴＯＰ", OUT, ""),
    ("Stop. Thank you", OUT, ""),
    ("stop texting me", OUT, ""),
    ("Stop sending me these", OUT, ""),
    ("please stop", OUT, ""),
    ("stop please", OUT, ""),
    ("ok stop", OUT, ""),
    ("STOPALL", OUT, ""),
    ("stop all", OUT, ""),
    ("UNSUBSCRIBE", OUT, ""),
    ("Unsubscribe me", OUT, ""),
    ("how do I unsubscribe?", OUT, ""),
    ("CANCEL", OUT, ""),
    ("cancel.", OUT, ""),
    ("END", OUT, ""),
    ("QUIT", OUT, ""),
    ("REVOKE", OUT, ""),
    ("OPTOUT", OUT, ""),
    ("opt out", OUT, ""),
    ("opt-out", OUT, ""),
    ("T", OUT, ""),
    ("t", OUT, ""),
    ("T.", OUT, ""),
    ("ｔ", OUT, ""),
    ("TD", OUT, ""),
    ("td.", OUT, ""),
    ("TD 谢谢", OUT, ""),
    ("回T", OUT, ""),
    ("回t", OUT, ""),
    ("回TD", OUT, ""),
    ("退订", OUT, ""),
    ("退订！", OUT, ""),
    ("请退订", OUT, ""),
    ("退订谢谢", OUT, ""),
    ("取消订阅", OUT, ""),
    ("不要再发了", OUT, ""),
    ("别发了", OUT, ""),
    ("2 STOP", OUT, ""),
    ("1 stop", OUT, ""),
    ("STOP 2", OUT, ""),
    ("2 不满意 退订", OUT, ""),
    ("不满意，鞋底开胶，别再发了", OUT, ""),
    ("满意 回T", OUT, ""),
    ("👍 stop", OUT, ""),
    ("HELP STOP", OUT, ""),
    ("START STOP", OUT, ""),
    ("stop 1", OUT, ""),
    # a complaint that only mentions the word is for a human
    ("1 but don't stop", S, "but don't stop"),
    ("2 the zipper won't stop sticking", U, "the zipper won't stop sticking"),
    ("it stopped working", U, None),
    ("the squeak doesn't stop", X, None),
    ("make it stop", OUT, ""),
    ("0?0?0?0 STOP", OUT, ""),
    ("the sole came off, the laces tore, and the box was wet. STOP", OUT, ""),
    # opt-in and help
    ("START", IN, ""),
    ("start", IN, ""),
    ("Start!", IN, ""),
    ("UNSTOP", IN, ""),
    ("unstop", IN, ""),
    ("subscribe", IN, ""),
    ("重新订阅", IN, ""),
    ("HELP", HELP, ""),
    ("help", HELP, ""),
    ("Help!", HELP, ""),
    ("help please", HELP, ""),
    ("INFO", HELP, ""),
    ("Info?", HELP, ""),
    ("帮助", HELP, ""),
    ("帮助？", HELP, ""),
]


@pytest.mark.parametrize(("text", "intent", "comment"), CASES, ids=[repr(c[0]) for c in CASES])
def test_reply_table(text, intent, comment):
    parsed = parse_reply(text)
    assert parsed.intent is intent, parsed
    if comment is not None:
        assert parsed.comment == comment


def test_table_is_big_and_has_no_duplicates():
    texts = [c[0] for c in CASES]
    assert len(texts) >= 150
    assert len(set(texts)) == len(texts)


OPTED_OUT_CASES = [
    ("YES", IN),
    ("yes", IN),
    ("Yes!", IN),
    ("yes please", IN),
    ("START", IN),
    ("UNSTOP", IN),
    ("STOP", OUT),
    ("退订", OUT),
    ("1", S),
    ("2 坏了", U),
    ("HELP", HELP),
]


@pytest.mark.parametrize(("text", "intent"), OPTED_OUT_CASES)
def test_after_opt_out_yes_means_opt_in(text, intent):
    assert parse_reply(text, opted_out=True).intent is intent


def test_yes_is_not_opt_in_for_a_subscribed_member():
    assert parse_reply("YES", opted_out=False).intent is ReplyIntent.UNCLEAR


def test_normalized_is_nfkc_lower_case():
    assert parse_reply("  ＳＴＯＰ  ").normalized == "stop"
    assert parse_reply("２ 坏了").normalized == "2 坏了"


def test_none_is_treated_as_empty():
    assert parse_reply(None).intent is ReplyIntent.UNCLEAR  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.booleans())
def test_never_raises_and_is_deterministic(text, opted_out):
    first = parse_reply(text, opted_out=opted_out)
    again = parse_reply(text, opted_out=opted_out)
    assert isinstance(first, ParsedReply)
    assert first == again
    assert first.intent in set(ReplyIntent)
    assert isinstance(first.comment, str) and isinstance(first.normalized, str)


_PIECES = st.sampled_from(
    [
        *(
            "1",
            "2",
            "１",
            "stop",
            "STOP",
            "退订",
            "T",
            "满意",
            "不满意",
            "not",
            "satisfied",
            "👍",
            "👎",
            "️",
            "⃣",
        ),
        *("yes", "help", "2.", "(", ")", "，", " ", "\u200b", "no", "problem", "\U0001f3fb", "'", "12", "or"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join), st.booleans())
def test_never_raises_on_keyword_soup(text, opted_out):
    parsed = parse_reply(text, opted_out=opted_out)
    assert parsed == parse_reply(text, opted_out=opted_out)


@given(st.text(alphabet="0123456789１２满意不好坏了👍👎😊!?.,，。()#-", max_size=20))
@settings(max_examples=200, deadline=None)
def test_stop_after_any_short_answer_wins(answer):
    assert parse_reply(f"{answer} STOP").intent is ReplyIntent.OPT_OUT
    assert parse_reply(f"{answer} 退订").intent is ReplyIntent.OPT_OUT

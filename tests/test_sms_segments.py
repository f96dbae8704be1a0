"""SMS segment counting against the GSM 03.38 rules (3GPP TS 23.038) and UCS-2 concatenation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from templating.sms import GSM_BASIC, GSM_EXTENSION, count_sms, estimated_cost, is_gsm7

EXT = "^{}\\[~]|€"
ZH = "您好感谢购买请回复满意"  # 11 CJK characters, all in the BMP
EMOJI = "😀"  # U+1F600: a surrogate pair in UTF-16

# (label, text, encoding, units, segments)
CASES = [
    ("empty", "", "GSM-7", 0, 0),
    ("one char", "a", "GSM-7", 1, 1),
    ("160 GSM", "a" * 160, "GSM-7", 160, 1),
    ("161 GSM", "a" * 161, "GSM-7", 161, 2),
    ("306 GSM", "a" * 306, "GSM-7", 306, 2),
    ("307 GSM", "a" * 307, "GSM-7", 307, 3),
    ("459 GSM", "a" * 459, "GSM-7", 459, 3),
    ("460 GSM", "a" * 460, "GSM-7", 460, 4),
    ("whole basic table", "".join(sorted(GSM_BASIC)), "GSM-7", 127, 1),
    ("accented basic", "èéùìòÇØøÅåÆæßÉÄÖÑÜäöñüà¡¿§¤£¥", "GSM-7", 29, 1),
    ("greek basic", "ΔΦΓΛΩΠΨΣΘΞ", "GSM-7", 10, 1),
    ("newline and CR", "a\nb\r\nc", "GSM-7", 6, 1),
    ("one extension char", "€", "GSM-7", 2, 1),
    ("all extension chars", EXT, "GSM-7", 18, 1),
    ("form feed is extension", "\f", "GSM-7", 2, 1),
    ("80 euro = 160 septets", "€" * 80, "GSM-7", 160, 1),
    ("81 euro = 162 septets", "€" * 81, "GSM-7", 162, 2),
    ("159 + one ext overflows", "a" * 159 + "[", "GSM-7", 161, 2),
    ("158 + one ext fits", "a" * 158 + "]", "GSM-7", 160, 1),
    # 152 septets then an escape pair: the pair may not straddle the 153 boundary, so it moves on.
    ("escape pair not split", "a" * 152 + "{" + "a" * 10, "GSM-7", 164, 2),
    ("escape pair fits exactly", "a" * 151 + "{" + "a" * 10, "GSM-7", 163, 2),
    ("escape pair at 2nd boundary", "a" * 305 + "|", "GSM-7", 307, 3),
    ("two segments of pairs", "~" * 153, "GSM-7", 306, 3),
    ("76 pairs fill the first exactly", "a" + "^" * 76 + "a" * 153, "GSM-7", 306, 2),
    ("76 pairs + 154", "a" + "^" * 76 + "a" * 154, "GSM-7", 307, 3),
    ("ASCII punctuation", "Hi! Reply 1 or 2? (yes) #1 @home 50% & more: 'ok' \"ok\" <a>=b", "GSM-7", 60, 1),
    ("backtick is not GSM", "`", "UCS-2", 1, 1),
    ("lowercase c-cedilla is not GSM", "ç", "UCS-2", 1, 1),
    ("curly quote is not GSM", "It’s", "UCS-2", 4, 1),
    ("one Chinese char", "好", "UCS-2", 1, 1),
    ("70 Chinese", "好" * 70, "UCS-2", 70, 1),
    ("71 Chinese", "好" * 71, "UCS-2", 71, 2),
    ("134 Chinese", "好" * 134, "UCS-2", 134, 2),
    ("135 Chinese", "好" * 135, "UCS-2", 135, 3),
    ("201 Chinese", "好" * 201, "UCS-2", 201, 3),
    ("202 Chinese", "好" * 202, "UCS-2", 202, 4),
    ("Chinese sentence", ZH, "UCS-2", 11, 1),
    ("Chinese punctuation", "您好，谢谢！", "UCS-2", 6, 1),
    ("one Chinese switches all", "a" * 100 + "好", "UCS-2", 101, 2),
    ("one emoji switches all", "a" * 69 + EMOJI, "UCS-2", 71, 2),
    ("single emoji is 2 units", EMOJI, "UCS-2", 2, 1),
    ("35 emoji = 70 units", EMOJI * 35, "UCS-2", 70, 1),
    ("36 emoji = 72 units", EMOJI * 36, "UCS-2", 72, 2),
    ("surrogate pair not split", "好" * 66 + EMOJI + "好", "UCS-2", 69, 1),
    ("surrogate pair not split multi", "好" * 66 + EMOJI + "好" * 5, "UCS-2", 73, 2),
    ("pair pushed to next segment", "好" * 66 + EMOJI + "好" * 66 + "a", "UCS-2", 135, 3),
    ("BMP symbol is 1 unit", "★", "UCS-2", 1, 1),
    ("thumbs up with skin tone", "👍🏻", "UCS-2", 4, 1),
    ("mixed zh + en + footer", "Hi 李先生，您的登山杖已使用365天。回T退订", "UCS-2", 24, 1),
    ("mixed en + euro + emoji", "Save 5€ today 👍", "UCS-2", 16, 1),
    ("en marketing 2 parts", "Hi Wei, your paddle is 400 days old. " * 5, "GSM-7", 185, 2),
]


@pytest.mark.parametrize(("label", "text", "encoding", "units", "segments"), CASES, ids=[c[0] for c in CASES])
def test_segment_table(label, text, encoding, units, segments):
    counted = count_sms(text)
    assert (counted.encoding, counted.units, counted.segments) == (encoding, units, segments)
    if segments > 1:
        assert counted.per_segment == (153 if encoding == "GSM-7" else 67)
    else:
        assert counted.per_segment == (160 if encoding == "GSM-7" else 70)


def test_every_extension_character_counts_double():
    for ch in EXT:
        assert count_sms(ch).units == 2, ch
    assert set(EXT) <= GSM_EXTENSION


def test_remaining_accounts_for_the_gap_an_escape_pair_leaves():
    # 152 + pair: segment one holds 152 septets (1 wasted), segment two the pair and 10 more.
    counted = count_sms("a" * 152 + "{" + "a" * 10)
    assert counted.segments == 2
    assert counted.remaining == 153 - 12
    assert count_sms("").remaining == 160
    assert count_sms("a" * 10).remaining == 150
    assert count_sms("好" * 71).remaining == 67 - 4


def test_is_gsm7():
    assert is_gsm7("Hello [world] €5")
    assert not is_gsm7("Hello 世界")
    assert is_gsm7("")


def test_estimated_cost():
    assert estimated_cost("a" * 161, 0.0079) == pytest.approx(0.0158)
    assert estimated_cost("", 0.0079) == 0


def _reference_segments(text: str) -> int:
    """An independent, slow reference: fill segments unit by unit from the encoded bytes."""
    if not text:
        return 0
    if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text):
        chunks = [[ch] if ch in GSM_BASIC else ["\x1b", ch] for ch in text]
        single, multi = 160, 153
    else:
        encoded = text.encode("utf-16-be")
        units = [encoded[i : i + 2] for i in range(0, len(encoded), 2)]
        chunks, i = [], 0
        while i < len(units):
            high = 0xD800 <= int.from_bytes(units[i], "big") <= 0xDBFF
            chunks.append(units[i : i + 2] if high else units[i : i + 1])
            i += 2 if high else 1
        single, multi = 70, 67
    if sum(len(c) for c in chunks) <= single:
        return 1
    segments, used = [[]], 0
    for chunk in chunks:
        if used + len(chunk) > multi:
            segments.append([])
            used = 0
        segments[-1].extend(chunk)
        used += len(chunk)
    return len(segments)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(sorted(GSM_BASIC) + list(EXT) + ["好", "😀", "★", "é", "ç"]),
        max_size=400,
    )
)
def test_matches_reference_on_random_texts(text):
    assert count_sms(text).segments == _reference_segments(text)

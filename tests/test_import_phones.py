"""The import's phone check: its shortcut for bare national digits must agree with phonenumbers."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from membership.importing import validation
from membership.importing.validation import Invalid

# Regions whose prefixes make parse() do something beyond "keep the digits": carrier codes (CN, BR),
# a national prefix that is also the country code (US "1"), leading zeros kept (IT), several
# regions on one code (US/CA, GB/JE, RU/KZ), and no national prefix at all (HK, SG).
REGIONS = [
    "CN",
    "US",
    "CA",
    "GB",
    "JE",
    "IT",
    "RU",
    "KZ",
    "BR",
    "AR",
    "MX",
    "DE",
    "FR",
    "JP",
    "HK",
    "TW",
    "SG",
    "IN",
]
# Leading digits that hit those rules: country codes, IDDs, national and carrier prefixes.
STARTS = [
    "",
    "0",
    "00",
    "011",
    "1",
    "10",
    "12",
    "179",
    "1795",
    "7",
    "8",
    "810",
    "86",
    "44",
    "39",
    "55",
    "54",
    "9",
    "15",
]


def full_check(value: str | None, region: str | None) -> str | None:
    """The check as it was before the shortcut: always phonenumbers.parse."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise Invalid(f"not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid(f"not a valid phone number (default region {region or 'none'})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def outcome(check, value, region):
    try:
        return check(value, region)
    except Invalid as exc:
        return f"invalid: {exc}"


@settings(max_examples=3000, deadline=None)
@given(
    start=st.sampled_from(STARTS),
    rest=st.text(alphabet="0123456789", max_size=16),
    region=st.sampled_from([*REGIONS, None, "ZZ", "001"]),
)
@example(start="", rest="13512345678", region="CN")
@example(start="179", rest="13512345678", region="CN")  # a CN carrier-code prefix: full parse
@example(start="86", rest="13512345678", region="CN")  # country code without the plus
@example(start="1", rest="2025550123", region="US")  # the US national prefix
@example(start="", rest="6135550123", region="US")  # a Canadian number, US as the default region
@example(start="0", rest="612345678", region="IT")  # an Italian leading zero
def test_the_shortcut_agrees_with_phonenumbers(start, rest, region):
    value = start + rest
    assert outcome(validation.phone, value, region) == outcome(full_check, value, region)


@pytest.mark.parametrize(
    ("value", "region", "taken"),
    [
        ("13512345678", "CN", True),
        ("2025550123", "US", True),
        ("17912345678", "CN", False),  # may start with a carrier code
        ("8613512345678", "CN", False),  # starts with the country code
        ("0013512345678", "CN", False),  # the international prefix
        ("013512345678", "CN", False),  # the national prefix
        ("+8613512345678", "CN", False),
        ("135 1234 5678", "CN", False),
        ("１３５１２３４５６７８", "CN", False),  # full-width digits: parse() normalises them
        ("13512345678", None, False),
        ("13512345678", "ZZ", False),
    ],
)
def test_the_shortcut_takes_only_bare_national_digits(value, region, taken):
    number = validation._plain_national(value, region)
    assert (number is not None) is taken
    if taken:
        assert number == phonenumbers.parse(value, region)

"""Per-row validation: raw strings in, a typed record ready for staging (or the row's errors) out.

Every check that could make the database refuse a row happens here, so one bad row never
aborts a chunk of good ones.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email

UTC = dt.UTC

# The record layouts the writers stage, in column order; "line" is the file line (API: the index).
FIELDS = {
    "members": (
        "line", "card_number", "name", "preferred_name", "phone", "email", "locale", "timezone", "tier",
        "interests", "joined_at", "sms_consent", "email_consent", "home_store_id",
    ),
    "products": ("line", "sku", "name", "category", "category_name", "price", "lifetime_days"),
    "purchases": ("line", "line_id", "card_number", "sku", "store_id", "purchased_at", "quantity", "amount"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was not imported: the file line (or API index), the column, and the reason."""

    line: int
    column: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """What validation needs to know about a store: its id, phone region and clock."""

    id: int
    code: str
    region: str | None
    timezone: ZoneInfo
    locale: str


@dataclass(frozen=True)
class Context:
    """Everything a row is validated against, fixed for the whole import."""

    stores: Mapping[str, StoreInfo]
    default_store: StoreInfo | None = None
    now: dt.datetime | None = None  # naive UTC; purchases after it (+1 day) are refused

    def store(self, code: str | None) -> StoreInfo | None:
        return self.stores.get(code) if code else self.default_store


class Invalid(ValueError):
    """One field failed; the message is the reason shown to the user."""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DATE = re.compile(
    r"(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|年(\d{1,2})月(\d{1,2})日?|(\d{2})(\d{2}))"
    r"(?:(?:[ T]+|日)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)
_AMOUNT = re.compile(r"[+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_INTEGER = re.compile(r"\d+(?:\.0*)?")
_LIST_SEPARATORS = re.compile(r"[;；|,，、/]")
_YES = frozenset({"1", "y", "yes", "true", "t", "是", "同意", "接受", "√", "✓", "opt-in", "optin"})
_NO = frozenset({"0", "n", "no", "false", "f", "否", "不同意", "拒绝", "不接受", "opt-out", "optout"})
MAX_AMOUNT = Decimal("9999999999.99")


def text(value: str | None, limit: int, *, required: bool = False) -> str | None:
    """Trimmed text or None; refuses control characters and values longer than the column."""
    value = (value or "").strip()
    if not value:
        if required:
            raise Invalid("required")
        return None
    if _CONTROL.search(value):
        raise Invalid("contains control characters")
    if len(value) > limit:
        raise Invalid(f"longer than {limit} characters")
    return value


def phone(value: str | None, region: str | None) -> str | None:
    """E.164, parsed with the store's region as the default for national numbers."""
    value = (value or "").strip()
    if not value:
        return None
    number = _plain_national(value, region)
    if number is None:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException as exc:
            raise Invalid(f"not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid(f"not a valid phone number (default region {region or 'none'})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=256)
def _dialling_rules(region: str | None) -> tuple[int, str, re.Pattern, re.Pattern | None] | None:
    """The region's country code and the prefixes ``phonenumbers.parse`` would strip, compiled once."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region) if region else None
    if metadata is None or not metadata.international_prefix:
        return None
    national = metadata.national_prefix_for_parsing
    return (
        metadata.country_code,
        str(metadata.country_code),
        re.compile(metadata.international_prefix),
        re.compile(national) if national else None,
    )


def _plain_national(value: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(value, region)`` returns, for a number written as bare national digits.

    A members file holds one phone per row and parse() is most of a row's validation (15 µs). For
    plain digits that start with none of the prefixes parse() looks for (the region's international
    and national prefixes, its country code, a leading 0), parse() keeps every digit as the
    national number, so the result can be built directly. Anything else returns None and takes
    the full parse. tests/test_import_validation.py checks the two agree on random input.
    """
    if not (2 <= len(value) <= 17 and value.isascii() and value.isdigit()) or value[0] == "0":
        return None
    rules = _dialling_rules(region)
    if rules is None:
        return None
    country_code, code_digits, international, national = rules
    if value.startswith(code_digits) or international.match(value) or (national and national.match(value)):
        return None
    return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(value))


_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*")


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    """email-validator's normalised form of a plain ASCII ``domain``, else None (the full check runs).

    Cached: a members file has millions of addresses but few domains, and the domain is where
    email-validator spends its time.
    """
    try:
        normal = validate_email("a@" + domain, check_deliverability=False).domain
    except EmailNotValidError:
        return None
    return normal if normal.isascii() and len(normal) == len(domain) else None


def email(value: str | None) -> str | None:
    """The normalised address; syntax only, no DNS (imports must not depend on the network)."""
    value = (value or "").strip()
    if not value:
        return None
    # Fast path, same result: a plain dot-atom local part is kept as written by email-validator,
    # so only the (cached) domain needs its check. Anything else takes the full check below.
    local, _, domain = value.rpartition("@")
    if len(value) <= 254 and len(local) <= 64 and _SIMPLE_LOCAL.fullmatch(local):
        normal = _ascii_domain(domain)
        if normal is not None:
            return f"{local}@{normal}"
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise Invalid(str(exc)) from None


def timestamp(value: str | None, tz: dt.tzinfo, *, required: bool = False) -> dt.datetime | None:
    """Naive UTC from an unambiguous date (Y-M-D, Y/M/D, Y.M.D, YYYYMMDD, Y年M月D日), time optional.

    Without an offset the value is the store's local time. Day-first and month-first forms are
    refused: 03/05/2024 means different days in different shops.
    """
    value = (value or "").strip()
    if not value:
        if required:
            raise Invalid("required")
        return None
    return _timestamp(value, tz)


@functools.lru_cache(maxsize=4096)
def _timestamp(value: str, tz: dt.tzinfo) -> dt.datetime:
    """``timestamp`` of a non-empty, trimmed value; cached because files repeat dates (joined_at)."""
    match = _DATE.fullmatch(value)
    if match is None:
        raise Invalid(f"not a date in a supported format: {value[:40]!r}")
    g = match.groups()
    year = int(g[0])
    month, day = (g[2], g[3]) if g[1] else (g[4], g[5]) if g[4] else (g[6], g[7])
    try:
        moment = dt.datetime(
            year, int(month), int(day), int(g[8] or 0), int(g[9] or 0), int(g[10] or 0),
            int((g[11] or "0").ljust(6, "0")),
        )  # fmt: skip
    except ValueError as exc:
        raise Invalid(f"not a real date: {exc}") from None
    offset = g[12]
    if offset is None:
        moment = moment.replace(tzinfo=tz)
    elif offset == "Z":
        moment = moment.replace(tzinfo=UTC)
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        moment = moment.replace(
            tzinfo=dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        )
    result = moment.astimezone(UTC).replace(tzinfo=None)
    if not 1900 <= result.year <= 2100:
        raise Invalid("date out of range")
    return result


def amount(value: str | None) -> Decimal | None:
    """A non-negative amount with at most two decimals; thousands commas and ¥ are allowed."""
    value = (value or "").strip().lstrip("¥￥").strip()
    if not value:
        return None
    if not _AMOUNT.fullmatch(value):
        raise Invalid(f"not an amount: {value[:40]!r}")
    try:
        number = Decimal(value.replace(",", ""))
    except InvalidOperation:
        raise Invalid(f"not an amount: {value[:40]!r}") from None
    if number > MAX_AMOUNT:  # first: quantizing a huge number overflows the decimal context
        raise Invalid("amount too large")
    if number.as_tuple().exponent < -2 and number != number.quantize(Decimal("0.01")):
        raise Invalid("more than two decimal places")
    return number.quantize(Decimal("0.01"))


def integer(value: str | None, low: int, high: int) -> int | None:
    """A whole number in [low, high]; "2.0" (spreadsheets) is 2, "2.5" is refused."""
    value = (value or "").strip()
    if not value:
        return None
    if not _INTEGER.fullmatch(value):
        raise Invalid(f"not a whole number: {value[:40]!r}")
    digits = value.split(".")[0].lstrip("0")
    if len(digits) > len(str(high)):  # also spares int() a 5,000-digit string, which it refuses
        raise Invalid(f"must be between {low} and {high}")
    number = int(digits or "0")
    if not low <= number <= high:
        raise Invalid(f"must be between {low} and {high}")
    return number


def yes_no(value: str | None) -> bool | None:
    """Consent as the member gave it; empty means "not stated", which changes nothing."""
    value = (value or "").strip().casefold()
    if not value:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise Invalid(f"not yes/no: {value[:20]!r}")


@functools.lru_cache(maxsize=256)
def locale(value: str) -> str:
    """A BCP 47 tag (zh-CN, en) checked against Babel's locale data."""
    try:
        parsed = Locale.parse(value.strip().replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise Invalid(f"unknown locale {value[:20]!r}") from None
    return "-".join(p for p in (parsed.language, parsed.script, parsed.territory) if p)


@functools.lru_cache(maxsize=256)
def zone(value: str) -> str:
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {value[:40]!r}") from None
    return value.strip()


@functools.lru_cache(maxsize=4096)
def interests(value: str | None) -> str | None:
    """A JSON list of distinct, trimmed interests, in the order given (cached: lists repeat)."""
    items = [i.strip() for i in _LIST_SEPARATORS.split(value or "") if i.strip()]
    if not items:
        return None
    if any(len(i) > 60 or _CONTROL.search(i) for i in items):
        raise Invalid("an interest is longer than 60 characters or has control characters")
    return json.dumps(list(dict.fromkeys(items)))


class _Row:
    """Collects a row's field errors so the user sees every problem of a line at once."""

    __slots__ = ("errors", "line", "row")

    def __init__(self, line: int, row: Mapping[str, str]) -> None:
        self.line, self.row, self.errors = line, row, []

    def get(self, column: str, check: Callable, *args, **kwargs):
        try:
            return check(self.row.get(column), *args, **kwargs)
        except Invalid as exc:
            self.errors.append(RowError(self.line, column, str(exc)))
            return None


def _store(r: _Row, ctx: Context) -> StoreInfo | None:
    code = r.get("store", text, 40)
    if code and code not in ctx.stores:
        r.errors.append(RowError(r.line, "store", f"unknown store code {code!r}"))
        return None
    return ctx.store(code)


def validate_member(line: int, row: Mapping[str, str], ctx: Context) -> tuple | list[RowError]:
    """A members record (see FIELDS) or the row's errors."""
    r = _Row(line, row)
    store = _store(r, ctx)
    tz = store.timezone if store else UTC
    raw_locale, raw_zone = (row.get("locale") or "").strip(), (row.get("timezone") or "").strip()
    record = (
        line,
        r.get("card_number", text, 64, required=True),
        r.get("name", text, 200, required=True),
        r.get("preferred_name", text, 100),
        r.get("phone", phone, store.region if store else None),
        r.get("email", email),
        r.get("locale", lambda v: locale(v)) if raw_locale else None,
        r.get("timezone", lambda v: zone(v)) if raw_zone else None,
        r.get("tier", text, 20),
        r.get("interests", interests),
        r.get("joined_at", timestamp, tz),
        r.get("sms_consent", yes_no),
        r.get("email_consent", yes_no),
        store.id if store else None,
    )
    return r.errors or record


def validate_product(line: int, row: Mapping[str, str], ctx: Context) -> tuple | list[RowError]:
    """A products record (see FIELDS) or the row's errors."""
    r = _Row(line, row)
    record = (
        line,
        r.get("sku", text, 64, required=True),
        r.get("name", text, 300, required=True),
        r.get("category", text, 64),
        r.get("category_name", text, 200),
        r.get("price", amount),
        r.get("lifetime_days", integer, 1, 3650),
    )
    return r.errors or record


def validate_purchase(line: int, row: Mapping[str, str], ctx: Context) -> tuple | list[RowError]:
    """A purchases record (see FIELDS) or the row's errors; member and product are resolved later."""
    r = _Row(line, row)
    store = _store(r, ctx)
    purchased_at = r.get("purchased_at", timestamp, store.timezone if store else UTC, required=True)
    if purchased_at and ctx.now and purchased_at > ctx.now + dt.timedelta(days=1):
        r.errors.append(RowError(line, "purchased_at", "in the future"))
    quantity = r.get("quantity", integer, 1, 1_000_000)
    record = (
        line,
        r.get("line_id", text, 80, required=True),
        r.get("card_number", text, 64, required=True),
        r.get("sku", text, 64, required=True),
        store.id if store else None,
        purchased_at,
        1 if quantity is None else quantity,
        r.get("amount", amount) or Decimal("0.00"),
    )
    return r.errors or record


VALIDATORS = {"members": validate_member, "products": validate_product, "purchases": validate_purchase}

"""SMS length per GSM 03.38: which alphabet a text needs and how many segments it costs."""

from __future__ import annotations

from dataclasses import dataclass

# The GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1) and its extension table, whose characters
# are sent as ESC + char and therefore count as two septets.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsSegments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # capacity of one segment at this length (160/153 or 70/67)
    last_used: int = 0  # units in the last segment (an unsplittable pair may leave a gap before it)

    @property
    def remaining(self) -> int:
        """Units left before the next segment starts."""
        return self.per_segment - self.last_used


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM basic or extension table."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def count_sms(text: str) -> SmsSegments:
    """Encoding, length and segment count; one non-GSM character switches the whole text to UCS-2."""
    if is_gsm7(text):
        sizes = [2 if ch in GSM_EXTENSION else 1 for ch in text]
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        # UCS-2 on the wire is UTF-16: characters outside the BMP (most emoji) take two units.
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, multi, encoding = 70, 67, "UCS-2"
    units = sum(sizes)
    if units <= single:
        return SmsSegments(encoding, units, 1 if units else 0, single, units)
    segments, last_used = _pack(sizes, multi)
    return SmsSegments(encoding, units, segments, multi, last_used)


def _pack(sizes: list[int], capacity: int) -> tuple[int, int]:
    """Segments needed, and units in the last, when an escape or surrogate pair is never split."""
    segments, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            segments, used = segments + 1, 0
        used += size
    return segments, used


def estimated_cost(text: str, price_per_segment: float) -> float:
    """What one send of ``text`` costs at a per-segment price."""
    return round(count_sms(text).segments * price_per_segment, 4)

"""How numbers, durations and dates read on the console (Jinja filters).

The server renders an English default; the browser re-formats every element with a
``data-num`` / ``data-date`` attribute for its own locale (static/user_usage.js).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from tokenledger.localdays import from_us
from tokenledger.metrics import dollars, dollars_text


def number(value: int) -> str:
    return f"{value:,}"


def money(nanos: int) -> str:
    """Dollars with cents (``$1,234.57``); under a cent, two significant digits
    (``$0.00061``), so a small cost never reads as ``$0.00``. The exact value is in
    exports, the API and the element's title (``exact_money``)."""
    exact = dollars(nanos)
    if nanos:
        places = min(-exact.adjusted() + 1, 9)  # two significant digits, at most nanos
        small = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        if small < Decimal("0.01"):
            return f"${format(small, 'f')}"
    return f"${exact.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"


def percent(share: Decimal) -> str:
    """A share 0..1 as ``12.3 %``."""
    return f"{(share * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_EVEN)} %"


def decimal_dollars(nanos: int) -> str:
    """``0.000612500``: the exact decimal, as the API writes it."""
    return dollars_text(nanos)


def exact_money(nanos: int) -> str:
    """``$0.000612500``: every nano-dollar."""
    return f"${dollars_text(nanos)}"


def usage_time(duration_ms: int) -> str:
    """``1 h 02 min``, ``12 min 05 s``, ``45 s``."""
    seconds = duration_ms // 1000
    if seconds < 60:
        return f"{seconds} s" if seconds or not duration_ms else "< 1 s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours:,} h {minutes:02d} min"


def short_date(day: date) -> str:
    """``Nov 1`` (``Nov 1, 2025`` for another year than today's)."""
    return f"{day:%b} {day.day}"


def range_phrase(start: date, end: date) -> str:
    """``on Nov 25`` or ``between Nov 1 and Nov 25``."""
    if start == end:
        return f"on {short_date(start)}"
    return f"between {short_date(start)} and {short_date(end)}"


def range_label(start: date, end: date, today: date) -> str:
    """What the calendar button says."""

    def label(day: date) -> str:
        text = short_date(day)
        return text if day.year == today.year else f"{text}, {day.year}"

    if start == end:
        return "Today" if start == today else label(start)
    return f"{label(start)} – {label(end)}"


def local_datetime(us: int | None, tz: ZoneInfo) -> str:
    if us is None:
        return ""
    moment: datetime = from_us(us, tz)
    return f"{moment:%b} {moment.day}, {moment:%H:%M}"


def utc_offset(tz: ZoneInfo, at: datetime) -> str:
    offset = at.astimezone(tz).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def change(current: int, previous: int) -> str:
    """``+23%``, ``-5%``, ``0%``; ``new`` when there was nothing before."""
    if previous == 0:
        return "new" if current else "–"
    percent = round((current - previous) * 100 / previous)
    return f"{percent:+d}%" if percent else "0%"

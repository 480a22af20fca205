"""Working days in the Netherlands, pure: weekends and the national public holidays are
skipped when a provider's response deadline is computed.

The holidays are the ones in the general collective agreements: New Year's Day, Easter
Sunday and Monday, King's Day (27 April, the 26th when the 27th is a Sunday), Liberation
Day in lustrum years (when most employers give the day off), Ascension Day, Whit Sunday
and Monday, and Christmas Day and Boxing Day. Good Friday is not a general day off."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo


def easter_sunday(year: int) -> date:
    """The Gregorian Easter date (the anonymous Meeus/Jones/Butcher algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


@cache
def dutch_holidays(year: int) -> frozenset[date]:
    easter = easter_sunday(year)
    kings_day = date(year, 4, 27)
    if kings_day.weekday() == 6:
        kings_day = date(year, 4, 26)
    days = {
        date(year, 1, 1),
        easter,
        easter + timedelta(days=1),
        kings_day,
        easter + timedelta(days=39),
        easter + timedelta(days=49),
        easter + timedelta(days=50),
        date(year, 12, 25),
        date(year, 12, 26),
    }
    if year % 5 == 0:
        days.add(date(year, 5, 5))
    return frozenset(days)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in dutch_holidays(day.year)


def add_working_days(start: datetime, days: int, timezone: str = "Europe/Amsterdam") -> datetime:
    """The moment ``days`` working days after ``start``, at the same local time of day.

    Counted on the local calendar, so a referral made on Friday afternoon with two working
    days is due on Tuesday afternoon, not on Sunday."""
    zone = ZoneInfo(timezone)
    local = start.astimezone(zone)
    day = local.date()
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return datetime.combine(day, local.timetz().replace(tzinfo=None), zone)

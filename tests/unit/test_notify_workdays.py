"""Working days for response deadlines: weekends and Dutch public holidays are skipped."""

from datetime import UTC, date, datetime

import pytest

from services.notify.workdays import add_working_days, dutch_holidays, easter_sunday, is_working_day


@pytest.mark.parametrize(
    "year,easter",
    [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28))],
)
def test_easter(year, easter):
    assert easter_sunday(year) == easter


def test_the_holidays_of_2025():
    assert dutch_holidays(2025) == {
        date(2025, 1, 1),
        date(2025, 4, 20),
        date(2025, 4, 21),
        date(2025, 4, 26),  # King's Day: 27th is a Sunday
        date(2025, 5, 5),  # Liberation Day in a lustrum year
        date(2025, 5, 29),
        date(2025, 6, 8),
        date(2025, 6, 9),
        date(2025, 12, 25),
        date(2025, 12, 26),
    }
    assert date(2026, 5, 5) not in dutch_holidays(2026)


def test_weekends_are_not_working_days():
    assert not is_working_day(date(2026, 11, 21)) and not is_working_day(date(2026, 11, 22))
    assert is_working_day(date(2026, 11, 23))


def amsterdam(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Amsterdam"))


@pytest.mark.parametrize(
    "start,days,due",
    [
        (amsterdam(2026, 11, 18, 10, 0), 2, amsterdam(2026, 11, 20, 10, 0)),  # Wednesday -> Friday
        (amsterdam(2026, 11, 20, 15, 0), 2, amsterdam(2026, 11, 24, 15, 0)),  # Friday -> Tuesday
        (amsterdam(2026, 11, 21, 9, 0), 1, amsterdam(2026, 11, 23, 9, 0)),  # Saturday -> Monday
        (amsterdam(2026, 4, 2, 12, 0), 2, amsterdam(2026, 4, 7, 12, 0)),  # over Easter Monday
        (amsterdam(2026, 12, 24, 9, 0), 2, amsterdam(2026, 12, 29, 9, 0)),  # over Christmas
        (amsterdam(2026, 11, 18, 10, 0), 0, amsterdam(2026, 11, 18, 10, 0)),
    ],
)
def test_add_working_days(start, days, due):
    assert add_working_days(start, days) == due


def test_the_local_calendar_counts_not_utc():
    # 23:30 UTC on Friday is already Saturday in Amsterdam: two working days end on Tuesday.
    due = add_working_days(datetime(2026, 11, 20, 23, 30, tzinfo=UTC), 2)
    assert due.date() == date(2026, 11, 24) and due.hour == 0 and due.minute == 30

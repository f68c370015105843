"""Calendar arithmetic for delivery promises, without the standard library's datetime.

Dates are (year, month, day) in the proleptic Gregorian calendar; days are counted from 1970-01-01.
"""


def is_leap_year(year: int) -> bool:
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        if is_leap_year(year):
            return 29
        return 28
    if month == 4 or month == 6 or month == 9 or month == 11:
        return 30
    return 31


def day_of_year(year: int, month: int, day: int) -> int:
    total: int = day
    for m in range(1, month):
        total += days_in_month(year, m)
    return total


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 (Howard Hinnant's algorithm)."""
    y: int = year
    if month <= 2:
        y -= 1
    era: int = y // 400
    yoe: int = y - era * 400
    mp: int = (month + 9) % 12
    doy: int = (153 * mp + 2) // 5 + day - 1
    doe: int = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def weekday(year: int, month: int, day: int) -> int:
    """0 for Monday up to 6 for Sunday."""
    return (days_from_civil(year, month, day) + 3) % 7


def is_business_day(year: int, month: int, day: int) -> bool:
    return weekday(year, month, day) < 5


def add_business_days(days: int, start_weekday: int) -> int:
    """Calendar days needed to pass `days` business days, starting on start_weekday (0 = Monday)."""
    calendar_days: int = 0
    remaining: int = days
    current: int = start_weekday
    while remaining > 0:
        calendar_days += 1
        current = (current + 1) % 7
        if current < 5:
            remaining -= 1
    return calendar_days


def main() -> None:
    print(is_leap_year(2024))
    print(day_of_year(2024, 3, 1))
    print(days_from_civil(2024, 1, 17))
    print(weekday(2024, 1, 17))
    print(add_business_days(3, 4))


if __name__ == "__main__":
    main()

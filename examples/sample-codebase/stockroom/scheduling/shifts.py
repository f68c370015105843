"""Staffing the picking floor: how many pickers each hour needs, from the expected order lines."""

from typing import List

LINES_PER_PICKER_HOUR: int = 60
MIN_PICKERS: int = 2
SHIFT_HOURS: int = 8


def pickers_needed(lines_per_hour: List[int]) -> List[int]:
    """Pickers per hour: enough for the work, never fewer than the minimum on the floor."""
    staff: List[int] = []
    for lines in lines_per_hour:
        needed: int = (lines + LINES_PER_PICKER_HOUR - 1) // LINES_PER_PICKER_HOUR
        if needed < MIN_PICKERS:
            needed = MIN_PICKERS
        staff.append(needed)
    return staff


def peak(staff: List[int]) -> int:
    best: int = 0
    for s in staff:
        if s > best:
            best = s
    return best


def picker_hours(staff: List[int]) -> int:
    total: int = 0
    for s in staff:
        total += s
    return total


def shifts_to_cover(staff: List[int]) -> int:
    """Full shifts needed when every picker works one shift of SHIFT_HOURS."""
    hours: int = picker_hours(staff)
    return (hours + SHIFT_HOURS - 1) // SHIFT_HOURS


def idle_percent(lines_per_hour: List[int], staff: List[int]) -> int:
    """Share of paid picker time without work, over the day."""
    capacity: int = picker_hours(staff) * LINES_PER_PICKER_HOUR
    if capacity == 0:
        return 0
    work: int = 0
    for lines in lines_per_hour:
        work += lines
    return (capacity - work) * 100 // capacity


def main() -> None:
    forecast: List[int] = [40, 95, 210, 340, 280, 150, 120, 60]
    staff: List[int] = pickers_needed(forecast)
    print(staff)
    print(peak(staff))
    print(shifts_to_cover(staff))
    print(idle_percent(forecast, staff))


if __name__ == "__main__":
    main()

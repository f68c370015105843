"""Delivery time windows, as minutes after midnight, kept in parallel lists of starts and ends."""

from typing import List


def total_covered(starts: List[int], ends: List[int]) -> int:
    """Minutes covered by at least one window; the windows must be sorted by start."""
    if len(starts) == 0:
        return 0
    covered: int = 0
    current_start: int = starts[0]
    current_end: int = ends[0]
    for i in range(1, len(starts)):
        s: int = starts[i]
        e: int = ends[i]
        if s <= current_end:
            if e > current_end:
                current_end = e
        else:
            covered += current_end - current_start
            current_start = s
            current_end = e
    covered += current_end - current_start
    return covered


def max_overlap(starts: List[int], ends: List[int]) -> int:
    """Most windows open at the same minute: the number of drivers needed at the peak."""
    best: int = 0
    for i in range(len(starts)):
        t: int = starts[i]
        open_now: int = 0
        for j in range(len(starts)):
            if starts[j] <= t:
                if t < ends[j]:
                    open_now += 1
        if open_now > best:
            best = open_now
    return best


def fits_in_window(start: int, end: int, arrival: int, service_minutes: int) -> bool:
    """Whether a driver arriving at `arrival` can finish within the window."""
    begin: int = arrival
    if begin < start:
        begin = start
    return begin + service_minutes <= end


def main() -> None:
    starts: List[int] = [480, 540, 600, 780]
    ends: List[int] = [600, 660, 720, 840]
    print(total_covered(starts, ends))
    print(max_overlap(starts, ends))
    print(fits_in_window(480, 600, 590, 15))


if __name__ == "__main__":
    main()

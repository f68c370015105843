"""Binary searches over sorted lists: exact matches, insertion points and ranges."""

from typing import List


def find(sorted_values: List[int], target: int) -> int:
    """Index of target in sorted_values, or -1."""
    lo: int = 0
    hi: int = len(sorted_values) - 1
    while lo <= hi:
        mid: int = (lo + hi) // 2
        value: int = sorted_values[mid]
        if value == target:
            return mid
        if value < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def lower_bound(sorted_values: List[int], target: int) -> int:
    """First index whose value is not less than target (len when there is none)."""
    lo: int = 0
    hi: int = len(sorted_values)
    while lo < hi:
        mid: int = (lo + hi) // 2
        if sorted_values[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def upper_bound(sorted_values: List[int], target: int) -> int:
    """First index whose value is greater than target."""
    lo: int = 0
    hi: int = len(sorted_values)
    while lo < hi:
        mid: int = (lo + hi) // 2
        if sorted_values[mid] <= target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def count_in_range(sorted_values: List[int], low: int, high: int) -> int:
    """How many values lie in [low, high]."""
    if low > high:
        return 0
    return upper_bound(sorted_values, high) - lower_bound(sorted_values, low)


def integer_sqrt(n: int) -> int:
    """Largest r with r * r <= n, by bisection."""
    if n < 2:
        return n
    lo: int = 1
    hi: int = n
    while lo < hi:
        mid: int = (lo + hi + 1) // 2
        if mid <= n // mid:
            lo = mid
        else:
            hi = mid - 1
    return lo


def main() -> None:
    prices: List[int] = [199, 250, 250, 399, 450, 999, 1299]
    print(find(prices, 399))
    print(lower_bound(prices, 250))
    print(count_in_range(prices, 200, 500))
    print(integer_sqrt(1000))


if __name__ == "__main__":
    main()

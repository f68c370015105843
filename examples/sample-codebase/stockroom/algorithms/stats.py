"""Descriptive statistics for dashboards: mean, spread, percentiles and outliers."""

from typing import List


def mean(values: List[float]) -> float:
    if len(values) == 0:
        return 0.0
    total: float = 0.0
    for v in values:
        total += v
    return total / len(values)


def variance(values: List[float]) -> float:
    """Population variance."""
    n: int = len(values)
    if n == 0:
        return 0.0
    m: float = mean(values)
    acc: float = 0.0
    for v in values:
        acc += (v - m) * (v - m)
    return acc / n


def stddev(values: List[float]) -> float:
    """Square root of the variance by Newton's method."""
    v: float = variance(values)
    if v <= 0.0:
        return 0.0
    x: float = v
    for step in range(30):
        x = 0.5 * (x + v / x)
    return x


def percentile(sorted_values: List[float], p: float) -> float:
    """Linear interpolation between closest ranks; sorted_values must be sorted ascending."""
    n: int = len(sorted_values)
    if n == 0:
        return 0.0
    if n == 1:
        only: float = sorted_values[0]
        return only
    rank: float = p / 100.0 * (n - 1)
    lower: int = int(rank)
    if lower >= n - 1:
        last: float = sorted_values[n - 1]
        return last
    fraction: float = rank - lower
    low_value: float = sorted_values[lower]
    high_value: float = sorted_values[lower + 1]
    return low_value + (high_value - low_value) * fraction


def count_outliers(values: List[float], limit_sigmas: float) -> int:
    """Values further than limit_sigmas standard deviations from the mean."""
    m: float = mean(values)
    s: float = stddev(values)
    count: int = 0
    for v in values:
        d: float = v - m
        if d < 0.0:
            d = -d
        if d > limit_sigmas * s:
            count += 1
    return count


def main() -> None:
    pick_minutes: List[float] = [3.5, 4.0, 4.2, 4.8, 5.1, 5.5, 6.0, 14.0]
    print(mean(pick_minutes))
    print(stddev(pick_minutes))
    print(percentile(pick_minutes, 95.0))
    print(count_outliers(pick_minutes, 2.0))


if __name__ == "__main__":
    main()

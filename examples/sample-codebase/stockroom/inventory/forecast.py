"""Demand forecasts from daily sales: moving averages and exponential smoothing."""

from typing import List


def per_day(total: float, days: int) -> float:
    if days <= 0:
        return 0.0
    return total / days


def moving_average(sales: List[float], window: int) -> List[float]:
    """The mean of each run of `window` consecutive days; shorter than the input by window - 1."""
    averages: List[float] = []
    if window <= 0 or window > len(sales):
        return averages
    running: float = 0.0
    for i in range(len(sales)):
        running += sales[i]
        if i >= window:
            running -= sales[i - window]
        if i >= window - 1:
            averages.append(per_day(running, window))
    return averages


def exponential_smoothing(sales: List[float], alpha: float) -> List[float]:
    """Simple exponential smoothing; each value is the forecast for the following day."""
    smoothed: List[float] = []
    if len(sales) == 0:
        return smoothed
    level: float = sales[0]
    for x in sales:
        level = alpha * x + (1.0 - alpha) * level
        smoothed.append(level)
    return smoothed


def holt_forecast(sales: List[float], alpha: float, beta: float, horizon: int) -> float:
    """Holt's linear method: level and trend smoothed separately, projected `horizon` days ahead."""
    if len(sales) < 2:
        return 0.0
    level: float = sales[0]
    trend: float = sales[1] - sales[0]
    for i in range(1, len(sales)):
        previous_level: float = level
        level = alpha * sales[i] + (1.0 - alpha) * (level + trend)
        trend = beta * (level - previous_level) + (1.0 - beta) * trend
    return level + trend * horizon


def mean_absolute_error(actual: List[float], predicted: List[float]) -> float:
    n: int = len(actual)
    if len(predicted) < n:
        n = len(predicted)
    if n == 0:
        return 0.0
    total: float = 0.0
    for i in range(n):
        diff: float = actual[i] - predicted[i]
        if diff < 0.0:
            diff = -diff
        total += diff
    return per_day(total, n)


def main() -> None:
    sales: List[float] = [12.0, 15.0, 11.0, 18.0, 20.0, 17.0, 22.0]
    print(moving_average(sales, 3))
    print(exponential_smoothing(sales, 0.3))
    print(holt_forecast(sales, 0.5, 0.3, 7))


if __name__ == "__main__":
    main()

"""Choosing which parcels ride on a van of limited capacity: the 0/1 knapsack problem."""

from typing import List


def best_value(weights: List[int], values: List[int], capacity: int) -> int:
    """Greatest total value of items whose weights fit in capacity, each item used at most once."""
    best: List[int] = []
    for c in range(capacity + 1):
        best.append(0)
    for i in range(len(weights)):
        weight: int = weights[i]
        value: int = values[i]
        c: int = capacity
        while c >= weight:
            with_item: int = best[c - weight]
            with_item += value
            if with_item > best[c]:
                best[c] = with_item
            c -= 1
    result: int = best[capacity]
    return result


def greedy_value(weights: List[int], values: List[int], capacity: int) -> int:
    """The quick estimate dispatchers use: take items by value per kilogram while they fit."""
    taken: List[bool] = []
    for i in range(len(weights)):
        taken.append(False)
    room: int = capacity
    total: int = 0
    while True:
        pick: int = -1
        for i in range(len(weights)):
            if taken[i]:
                continue
            if weights[i] > room:
                continue
            if pick < 0:
                pick = i
            elif values[i] * weights[pick] > values[pick] * weights[i]:
                pick = i
        if pick < 0:
            break
        taken[pick] = True
        room -= weights[pick]
        total += values[pick]
    return total


def main() -> None:
    weights: List[int] = [12, 7, 11, 8, 9]
    values: List[int] = [24, 13, 23, 15, 16]
    print(best_value(weights, values, 26))
    print(greedy_value(weights, values, 26))


if __name__ == "__main__":
    main()

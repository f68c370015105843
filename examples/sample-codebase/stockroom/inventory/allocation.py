"""Splitting an order's quantity across warehouses: nearest first, without over-promising stock."""

from typing import List


def allocate_nearest_first(quantity: int, available: List[int], distance_km: List[int]) -> List[int]:
    """Take units from the nearest warehouse that has stock, then the next nearest, and so on.

    Returns the units taken from each warehouse, in the input order; their sum is less than the quantity
    when the network does not hold enough.
    """
    taken: List[int] = []
    used: List[bool] = []
    for i in range(len(available)):
        taken.append(0)
        used.append(False)
    remaining: int = quantity
    while remaining > 0:
        nearest: int = -1
        for i in range(len(available)):
            if used[i]:
                continue
            if available[i] <= 0:
                continue
            if nearest < 0:
                nearest = i
            elif distance_km[i] < distance_km[nearest]:
                nearest = i
        if nearest < 0:
            break
        used[nearest] = True
        take: int = available[nearest]
        if take > remaining:
            take = remaining
        taken[nearest] = take
        remaining -= take
    return taken


def fill_rate_percent(requested: int, allocated: List[int]) -> int:
    if requested <= 0:
        return 100
    total: int = 0
    for units in allocated:
        total += units
    return total * 100 // requested


def shipments_needed(allocated: List[int]) -> int:
    """Each warehouse that contributes ships one parcel."""
    count: int = 0
    for units in allocated:
        if units > 0:
            count += 1
    return count


def main() -> None:
    taken: List[int] = allocate_nearest_first(30, [10, 25, 40], [120, 15, 300])
    print(taken)
    print(fill_rate_percent(30, taken))
    print(shipments_needed(taken))


if __name__ == "__main__":
    main()

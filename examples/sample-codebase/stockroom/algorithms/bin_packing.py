"""Packing items into as few cartons as possible: first fit decreasing."""

from typing import List


def sorted_descending(sizes: List[int]) -> List[int]:
    ordered: List[int] = []
    for s in sizes:
        ordered.append(s)
    for i in range(1, len(ordered)):
        j: int = i
        while j > 0:
            if ordered[j - 1] >= ordered[j]:
                break
            swap: int = ordered[j]
            ordered[j] = ordered[j - 1]
            ordered[j - 1] = swap
            j -= 1
    return ordered


def first_fit_decreasing(sizes: List[int], carton_capacity: int) -> List[int]:
    """Free space left in each carton used; its length is the number of cartons.

    Items larger than a carton are skipped; callers check for them first.
    """
    free: List[int] = []
    ordered: List[int] = sorted_descending(sizes)
    for i in range(len(ordered)):
        size: int = ordered[i]
        if size > carton_capacity:
            continue
        placed: bool = False
        for c in range(len(free)):
            if free[c] >= size:
                free[c] -= size
                placed = True
                break
        if not placed:
            free.append(carton_capacity - size)
    return free


def lower_bound_cartons(sizes: List[int], carton_capacity: int) -> int:
    """No packing can use fewer cartons than the total volume divided by the carton's."""
    total: int = 0
    for s in sizes:
        total += s
    return (total + carton_capacity - 1) // carton_capacity


def wasted_percent(free: List[int], carton_capacity: int) -> int:
    if len(free) == 0:
        return 0
    waste: int = 0
    for f in free:
        waste += f
    return waste * 100 // (len(free) * carton_capacity)


def main() -> None:
    sizes: List[int] = [40, 25, 60, 10, 35, 55, 20, 5]
    free: List[int] = first_fit_decreasing(sizes, 100)
    print(len(free))
    print(lower_bound_cartons(sizes, 100))
    print(wasted_percent(free, 100))


if __name__ == "__main__":
    main()

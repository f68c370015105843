"""Sorting routines for pick lists: stable merge sort and counting sort for small keys."""

from typing import List


def merge(left: List[int], right: List[int]) -> List[int]:
    merged: List[int] = []
    i: int = 0
    j: int = 0
    while i < len(left) and j < len(right):
        a: int = left[i]
        b: int = right[j]
        if a <= b:
            merged.append(a)
            i += 1
        else:
            merged.append(b)
            j += 1
    while i < len(left):
        merged.append(left[i])
        i += 1
    while j < len(right):
        merged.append(right[j])
        j += 1
    return merged


def merge_sort(values: List[int]) -> List[int]:
    """Bottom-up merge sort: runs of width 1, 2, 4, ... merged pairwise."""
    current: List[int] = []
    for v in values:
        current.append(v)
    width: int = 1
    n: int = len(current)
    while width < n:
        merged: List[int] = []
        start: int = 0
        while start < n:
            left: List[int] = []
            right: List[int] = []
            k: int = start
            while k < start + width and k < n:
                left.append(current[k])
                k += 1
            while k < start + 2 * width and k < n:
                right.append(current[k])
                k += 1
            part: List[int] = merge(left, right)
            for p in range(len(part)):
                merged.append(part[p])
            start += 2 * width
        current = merged
        width = width * 2
    return current


def counting_sort(values: List[int], max_value: int) -> List[int]:
    """Sort small non-negative keys (aisle numbers, priorities) in linear time."""
    counts: List[int] = []
    for i in range(max_value + 1):
        counts.append(0)
    for v in values:
        counts[v] += 1
    ordered: List[int] = []
    for key in range(max_value + 1):
        for times in range(counts[key]):
            ordered.append(key)
    return ordered


def is_sorted(values: List[int]) -> bool:
    for i in range(1, len(values)):
        if values[i - 1] > values[i]:
            return False
    return True


def main() -> None:
    aisles: List[int] = [12, 3, 7, 3, 21, 1, 9]
    print(merge_sort(aisles))
    print(counting_sort(aisles, 24))
    print(is_sorted(merge_sort(aisles)))


if __name__ == "__main__":
    main()

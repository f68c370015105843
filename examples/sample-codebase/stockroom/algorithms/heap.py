"""A binary min-heap of integer keys, used to release the most urgent orders to the pickers first.

The heap is an ordinary list kept in heap order; each operation returns the new list so callers can keep
snapshots for the dashboard.
"""

from typing import List


def make_copy(values: List[int]) -> List[int]:
    items: List[int] = []
    for v in values:
        items.append(v)
    return items


def sift_up(heap: List[int], index: int) -> List[int]:
    items: List[int] = []
    for v in heap:
        items.append(v)
    child: int = index
    while child > 0:
        parent: int = (child - 1) // 2
        if items[parent] <= items[child]:
            break
        swap: int = items[parent]
        items[parent] = items[child]
        items[child] = swap
        child = parent
    return items


def sift_down(heap: List[int], index: int) -> List[int]:
    items: List[int] = []
    for v in heap:
        items.append(v)
    n: int = len(items)
    parent: int = index
    while True:
        smallest: int = parent
        left: int = 2 * parent + 1
        right: int = left + 1
        if left < n:
            if items[left] < items[smallest]:
                smallest = left
        if right < n:
            if items[right] < items[smallest]:
                smallest = right
        if smallest == parent:
            break
        swap: int = items[parent]
        items[parent] = items[smallest]
        items[smallest] = swap
        parent = smallest
    return items


def push(heap: List[int], key: int) -> List[int]:
    items: List[int] = []
    for v in heap:
        items.append(v)
    items.append(key)
    return sift_up(items, len(items) - 1)


def pop(heap: List[int]) -> List[int]:
    """The heap without its smallest key (which is heap[0])."""
    n: int = len(heap)
    items: List[int] = []
    if n <= 1:
        return items
    items.append(heap[n - 1])
    for i in range(1, n - 1):
        items.append(heap[i])
    return sift_down(items, 0)


def heapify(values: List[int]) -> List[int]:
    """Heap order in linear time: sift down every parent, the last one first."""
    items: List[int] = make_copy(values)
    index: int = len(items) // 2 - 1
    while index >= 0:
        items = sift_down(items, index)
        index -= 1
    return items


def main() -> None:
    deadlines: List[int] = [930, 1015, 845, 1200, 900]
    heap: List[int] = heapify(deadlines)
    print(heap[0])
    heap = pop(heap)
    print(heap[0])


if __name__ == "__main__":
    main()

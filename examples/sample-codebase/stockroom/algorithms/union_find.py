"""Disjoint sets: grouping orders that share a delivery address so they ship together."""

from typing import List


def make_sets(n: int) -> List[int]:
    parent: List[int] = []
    for i in range(n):
        parent.append(i)
    return parent


def root_of(parent: List[int], x: int) -> int:
    r: int = x
    while parent[r] != r:
        r = parent[r]
    return r


def joined(parent: List[int], a: int, b: int) -> List[int]:
    """A copy of parent with the sets of a and b merged (the smaller root points at the larger)."""
    merged: List[int] = []
    for p in parent:
        merged.append(p)
    ra: int = root_of(parent, a)
    rb: int = root_of(parent, b)
    if ra == rb:
        return merged
    if ra < rb:
        merged[ra] = rb
    else:
        merged[rb] = ra
    return merged


def same_set(parent: List[int], a: int, b: int) -> bool:
    return root_of(parent, a) == root_of(parent, b)


def count_sets(parent: List[int]) -> int:
    count: int = 0
    for i in range(len(parent)):
        if parent[i] == i:
            count += 1
    return count


def main() -> None:
    groups: List[int] = make_sets(6)
    groups = joined(groups, 0, 3)
    groups = joined(groups, 3, 5)
    groups = joined(groups, 1, 2)
    print(same_set(groups, 0, 5))
    print(count_sets(groups))


if __name__ == "__main__":
    main()

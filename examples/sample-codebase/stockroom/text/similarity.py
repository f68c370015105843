"""Fuzzy matching of product names typed by customers against the catalogue.

Names are compared as lists of character codes so the same code serves any alphabet.
"""

from typing import List


def edit_distance(a: List[int], b: List[int]) -> int:
    """Levenshtein distance with two rows of the dynamic-programming table."""
    previous: List[int] = []
    for j in range(len(b) + 1):
        previous.append(j)
    for i in range(1, len(a) + 1):
        current: List[int] = []
        current.append(i)
        for j in range(1, len(b) + 1):
            cost: int = 1
            if a[i - 1] == b[j - 1]:
                cost = 0
            deletion: int = previous[j]
            deletion += 1
            insertion: int = current[j - 1]
            insertion += 1
            substitution: int = previous[j - 1]
            substitution += cost
            best: int = deletion
            if insertion < best:
                best = insertion
            if substitution < best:
                best = substitution
            current.append(best)
        previous = current
    result: int = previous[len(b)]
    return result


def similarity_percent(a: List[int], b: List[int]) -> int:
    """100 for equal names, falling towards 0 as more edits are needed."""
    longest: int = len(a)
    if len(b) > longest:
        longest = len(b)
    if longest == 0:
        return 100
    return 100 - edit_distance(a, b) * 100 // longest


def common_prefix(a: List[int], b: List[int]) -> int:
    n: int = 0
    limit: int = len(a)
    if limit > len(b):
        limit = len(b)
    while n < limit:
        if a[n] != b[n]:
            break
        n += 1
    return n


def main() -> None:
    kettle: List[int] = [107, 101, 116, 116, 108, 101]
    kettel: List[int] = [107, 101, 116, 116, 101, 108]
    print(edit_distance(kettle, kettel))
    print(similarity_percent(kettle, kettel))
    print(common_prefix(kettle, kettel))


if __name__ == "__main__":
    main()

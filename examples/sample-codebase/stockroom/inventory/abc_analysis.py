"""ABC analysis: rank products by their share of revenue so the best sellers get the best bins."""

from typing import List

CLASS_A: int = 0
CLASS_B: int = 1
CLASS_C: int = 2


def sort_descending(values: List[float]) -> List[float]:
    """Insertion sort, largest first; catalogues per warehouse are small."""
    ordered: List[float] = []
    for v in values:
        ordered.append(v)
    for i in range(1, len(ordered)):
        current: float = ordered[i]
        j: int = i - 1
        while j >= 0:
            if ordered[j] >= current:
                break
            ordered[j + 1] = ordered[j]
            j -= 1
        ordered[j + 1] = current
    return ordered


def share_of(part: float, whole: float) -> float:
    if whole <= 0.0:
        return 1.0
    return part / whole


def cumulative_shares(revenues: List[float]) -> List[float]:
    """Running share of total revenue, products taken largest first."""
    ordered: List[float] = sort_descending(revenues)
    total: float = 0.0
    for i in range(len(ordered)):
        total += ordered[i]
    shares: List[float] = []
    running: float = 0.0
    for i in range(len(ordered)):
        running += ordered[i]
        shares.append(share_of(running, total))
    return shares


def classify(shares: List[float], a_limit: float, b_limit: float) -> List[int]:
    """Class of each product: A up to a_limit of revenue, B up to b_limit, C for the long tail."""
    classes: List[int] = []
    for share in shares:
        if share <= a_limit:
            classes.append(CLASS_A)
        elif share <= b_limit:
            classes.append(CLASS_B)
        else:
            classes.append(CLASS_C)
    return classes


def count_class(classes: List[int], wanted: int) -> int:
    n: int = 0
    for c in classes:
        if c == wanted:
            n += 1
    return n


def main() -> None:
    revenues: List[float] = [1200.0, 80.0, 15000.0, 430.0, 9800.0, 35.0, 2600.0]
    shares: List[float] = cumulative_shares(revenues)
    classes: List[int] = classify(shares, 0.8, 0.95)
    print(shares)
    print(classes)
    print(count_class(classes, CLASS_A))


if __name__ == "__main__":
    main()

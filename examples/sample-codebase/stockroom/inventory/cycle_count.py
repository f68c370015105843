"""Cycle counting: comparing counted stock with the books and deciding what to recount."""

from typing import List

TOLERANCE_PERCENT: float = 2.0


def variance_units(counted: int, booked: int) -> int:
    return counted - booked


def variance_percent(counted: int, booked: int) -> float:
    if booked == 0:
        if counted == 0:
            return 0.0
        return 100.0
    return 100.0 * (counted - booked) / booked


def needs_recount(counted: int, booked: int, unit_cost_cents: int, value_limit_cents: int) -> bool:
    """Recount when the gap is beyond tolerance in units or its value is beyond the limit."""
    pct: float = variance_percent(counted, booked)
    if pct < 0.0:
        pct = -pct
    value: int = variance_units(counted, booked) * unit_cost_cents
    if value < 0:
        value = -value
    return pct > TOLERANCE_PERCENT or value > value_limit_cents


def shrinkage_cents(counted: List[int], booked: List[int], unit_costs: List[int]) -> int:
    """Value of the units missing across a count; surpluses do not offset losses."""
    loss: int = 0
    for i in range(len(counted)):
        gap: int = booked[i] - counted[i]
        unit_cost: int = unit_costs[i]
        if gap > 0:
            loss += gap * unit_cost
    return loss


def accuracy_percent(counted: List[int], booked: List[int]) -> float:
    """Share of locations whose count matched the books exactly."""
    if len(counted) == 0:
        return 100.0
    exact: int = 0
    for i in range(len(counted)):
        if counted[i] == booked[i]:
            exact += 1
    return 100.0 * exact / len(counted)


def main() -> None:
    print(variance_percent(97, 100))
    print(needs_recount(97, 100, 1250, 2000))
    print(shrinkage_cents([10, 5, 7], [10, 6, 9], [300, 1200, 50]))
    print(accuracy_percent([10, 5, 7], [10, 6, 9]))


if __name__ == "__main__":
    main()

"""Purchase quantities: economic order quantity and supplier price breaks."""

import math
from dataclasses import dataclass
from typing import List


@dataclass
class PriceBreak:
    min_quantity: int
    unit_cost_cents: int


def economic_order_quantity(annual_demand: float, order_cost_cents: float, holding_cost_cents: float) -> int:
    """Wilson's formula: the order size that balances ordering and holding costs."""
    if holding_cost_cents <= 0:
        raise ValueError("holding cost must be positive")
    return max(1, round(math.sqrt(2 * annual_demand * order_cost_cents / holding_cost_cents)))


def total_annual_cost(
    quantity: int, annual_demand: float, order_cost: float, holding_rate: float, unit_cost: int
) -> float:
    orders_per_year = annual_demand / quantity
    return annual_demand * unit_cost + orders_per_year * order_cost + quantity / 2 * unit_cost * holding_rate


def best_quantity(annual_demand: float, order_cost: float, holding_rate: float, breaks: List[PriceBreak]) -> int:
    """Check the EOQ at every price break and each break's minimum, and keep the cheapest plan."""
    candidates = []
    for pb in sorted(breaks, key=lambda b: b.min_quantity):
        eoq = economic_order_quantity(annual_demand, order_cost, holding_rate * pb.unit_cost_cents)
        quantity = max(eoq, pb.min_quantity)
        cost = total_annual_cost(quantity, annual_demand, order_cost, holding_rate, pb.unit_cost_cents)
        candidates.append((cost, quantity))
    if not candidates:
        return 0
    return min(candidates)[1]


if __name__ == "__main__":
    offers = [PriceBreak(1, 500), PriceBreak(100, 470), PriceBreak(500, 450)]
    print(best_quantity(2400.0, 4500.0, 0.2, offers))

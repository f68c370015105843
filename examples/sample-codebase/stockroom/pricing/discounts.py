"""Volume discounts: the more units of one product, the lower the unit price."""

from typing import List

MAX_DISCOUNT_BPS: int = 5000

# Quantity at which each tier starts, and the discount of that tier.
TIER_QUANTITIES: List[int] = [1, 10, 50, 200, 1000]
TIER_DISCOUNTS_BPS: List[int] = [0, 250, 500, 900, 1500]


def tier_index(quantity: int) -> int:
    """Index of the highest tier whose starting quantity the order reaches."""
    index: int = 0
    for i in range(len(TIER_QUANTITIES)):
        if quantity >= TIER_QUANTITIES[i]:
            index = i
    return index


def volume_discount_bps(quantity: int) -> int:
    discount: int = TIER_DISCOUNTS_BPS[tier_index(quantity)]
    return discount


def combine_discounts_bps(first_bps: int, second_bps: int) -> int:
    """Two discounts applied one after the other, as one discount; capped at the maximum."""
    remaining: int = (10000 - first_bps) * (10000 - second_bps) // 10000
    combined: int = 10000 - remaining
    if combined > MAX_DISCOUNT_BPS:
        return MAX_DISCOUNT_BPS
    return combined


def units_to_next_tier(quantity: int) -> int:
    """How many more units reach the next tier; 0 at the top tier."""
    index: int = tier_index(quantity)
    if index + 1 >= len(TIER_QUANTITIES):
        return 0
    next_start: int = TIER_QUANTITIES[index + 1]
    return next_start - quantity


def discounted_unit_cents(unit_cents: int, quantity: int, customer_bps: int) -> int:
    bps: int = combine_discounts_bps(volume_discount_bps(quantity), customer_bps)
    return unit_cents - (unit_cents * bps + 5000) // 10000


def main() -> None:
    print(volume_discount_bps(75))
    print(combine_discounts_bps(500, 1000))
    print(units_to_next_tier(75))
    print(discounted_unit_cents(1250, 75, 300))


if __name__ == "__main__":
    main()

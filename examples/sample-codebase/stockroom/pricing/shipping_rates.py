"""Shipping rates by weight bracket and zone, as negotiated with the parcel carrier."""

from typing import List

FUEL_SURCHARGE_BPS: int = 850


def bracket_limits_grams() -> List[int]:
    """Upper weight limit of each bracket in grams."""
    return [500, 1000, 2000, 5000, 10000, 20000, 31500]


def bracket_rates_cents() -> List[int]:
    """Base rate of each bracket in cents."""
    return [390, 490, 590, 790, 1090, 1590, 2290]


def zone_surcharges_bps() -> List[int]:
    """Surcharge per zone in basis points of the base rate: domestic, neighbours, rest of the union, world."""
    return [0, 3500, 6000, 15000]


def bracket(weight_grams: int) -> int:
    """Index of the bracket a parcel falls into, or -1 when it is too heavy for the carrier."""
    limits: List[int] = bracket_limits_grams()
    for i in range(len(limits)):
        if weight_grams <= limits[i]:
            return i
    return -1


def base_rate_cents(weight_grams: int) -> int:
    index: int = bracket(weight_grams)
    if index < 0:
        return -1
    rates: List[int] = bracket_rates_cents()
    rate: int = rates[index]
    return rate


def zone_rate_cents(weight_grams: int, zone: int) -> int:
    base: int = base_rate_cents(weight_grams)
    surcharges: List[int] = zone_surcharges_bps()
    if base < 0 or zone < 0 or zone >= len(surcharges):
        return -1
    surcharge: int = surcharges[zone]
    return base + base * surcharge // 10000


def with_fuel_cents(rate_cents: int) -> int:
    return rate_cents + (rate_cents * FUEL_SURCHARGE_BPS + 5000) // 10000


def quote_cents(weight_grams: int, zone: int, subtotal_cents: int, free_threshold_cents: int) -> int:
    """What the customer pays for shipping; free above the threshold for domestic orders."""
    if zone == 0 and subtotal_cents >= free_threshold_cents:
        return 0
    rate: int = zone_rate_cents(weight_grams, zone)
    if rate < 0:
        return -1
    return with_fuel_cents(rate)


def main() -> None:
    print(bracket(1800))
    print(zone_rate_cents(1800, 2))
    print(quote_cents(1800, 2, 4000, 7500))
    print(quote_cents(1800, 0, 8000, 7500))


if __name__ == "__main__":
    main()

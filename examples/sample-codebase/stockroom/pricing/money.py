"""Integer-cent arithmetic: rounding, percentages and splitting an amount without losing a cent."""

from typing import List

BPS_PER_UNIT: int = 10000


def div_round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves away from zero."""
    if denominator == 0:
        return 0
    negative: bool = numerator < 0
    if denominator < 0:
        negative = not negative
    num: int = numerator
    den: int = denominator
    if num < 0:
        num = -num
    if den < 0:
        den = -den
    quotient: int = (2 * num + den) // (2 * den)
    if negative:
        return -quotient
    return quotient


def div_round_half_even(numerator: int, denominator: int) -> int:
    """Banker's rounding for non-negative amounts, as accounting ledgers use."""
    if denominator <= 0:
        return 0
    quotient: int = numerator // denominator
    remainder: int = numerator % denominator
    twice: int = 2 * remainder
    if twice > denominator:
        return quotient + 1
    if twice == denominator and quotient % 2 == 1:
        return quotient + 1
    return quotient


def apply_bps(amount_cents: int, bps: int) -> int:
    """The share of amount_cents that bps basis points are."""
    return div_round_half_up(amount_cents * bps, BPS_PER_UNIT)


def percent_to_bps(percent: float) -> int:
    return int(percent * 100.0 + 0.5)


def split_evenly(amount_cents: int, parts: int) -> List[int]:
    """Split an amount into parts that differ by at most a cent and add up to the amount exactly."""
    shares: List[int] = []
    if parts <= 0:
        return shares
    base: int = amount_cents // parts
    leftover: int = amount_cents - base * parts
    for i in range(parts):
        if i < leftover:
            shares.append(base + 1)
        else:
            shares.append(base)
    return shares


def allocate_by_weights(amount_cents: int, weights: List[int]) -> List[int]:
    """Split an amount in proportion to weights (largest remainder method); the shares add up exactly."""
    total_weight: int = 0
    for w in weights:
        total_weight += w
    shares: List[int] = []
    remainders: List[int] = []
    if total_weight == 0:
        for w in weights:
            shares.append(0)
        return shares
    given: int = 0
    for w in weights:
        share: int = amount_cents * w // total_weight
        shares.append(share)
        remainders.append(amount_cents * w % total_weight)
        given += share
    missing: int = amount_cents - given
    while missing > 0:
        best: int = 0
        for i in range(len(remainders)):
            if remainders[i] > remainders[best]:
                best = i
        shares[best] += 1
        remainders[best] = -1
        missing -= 1
    return shares


def main() -> None:
    print(div_round_half_up(7, 2))
    print(div_round_half_even(5, 2))
    print(apply_bps(1999, 2000))
    print(split_evenly(1000, 3))
    print(allocate_by_weights(1000, [1, 1, 1]))


if __name__ == "__main__":
    main()

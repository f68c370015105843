"""Promotions: multi-buy offers ("3 for 2"), bundles and spend thresholds."""


def free_units(quantity: int, buy: int, get_free: int) -> int:
    """Units given free under a "buy N, get M free" offer; every group of N + M has M free units."""
    group: int = buy + get_free
    if group <= 0 or get_free <= 0:
        return 0
    full_groups: int = quantity // group
    rest: int = quantity % group
    extra: int = 0
    if rest > buy:
        extra = rest - buy
    return full_groups * get_free + extra


def multibuy_price_cents(quantity: int, unit_cents: int, buy: int, get_free: int) -> int:
    paid: int = quantity - free_units(quantity, buy, get_free)
    return paid * unit_cents


def bundle_price_cents(component_total_cents: int, bundle_discount_bps: int, minimum_margin_cents: int) -> int:
    """A bundle costs its parts less the bundle discount, but never less than the floor the buyer set."""
    price: int = component_total_cents - component_total_cents * bundle_discount_bps // 10000
    if price < minimum_margin_cents:
        return minimum_margin_cents
    return price


def threshold_reward_cents(subtotal_cents: int, threshold_cents: int, reward_cents: int, repeat: bool) -> int:
    """A "spend 50, save 5" reward: once, or once per threshold reached when the offer repeats."""
    if threshold_cents <= 0 or subtotal_cents < threshold_cents:
        return 0
    if not repeat:
        return reward_cents
    return subtotal_cents // threshold_cents * reward_cents


def best_offer_cents(quantity: int, unit_cents: int) -> int:
    """The cheapest of the offers running this week for one product line."""
    plain: int = quantity * unit_cents
    three_for_two: int = multibuy_price_cents(quantity, unit_cents, 2, 1)
    five_for_four: int = multibuy_price_cents(quantity, unit_cents, 4, 1)
    best: int = plain
    if three_for_two < best:
        best = three_for_two
    if five_for_four < best:
        best = five_for_four
    return best


def main() -> None:
    print(free_units(7, 2, 1))
    print(multibuy_price_cents(7, 300, 2, 1))
    print(bundle_price_cents(12000, 1500, 9000))
    print(threshold_reward_cents(12000, 5000, 500, True))
    print(best_offer_cents(10, 250))


if __name__ == "__main__":
    main()

"""Sales tax: prices may be quoted with tax included (consumer shops) or excluded (wholesale)."""

BPS_PER_UNIT: int = 10000
STANDARD_BPS: int = 2000
REDUCED_BPS: int = 700
ZERO_BPS: int = 0

# Product categories with their own rate.
CATEGORY_FOOD: int = 1
CATEGORY_BOOKS: int = 2
CATEGORY_EXPORT: int = 3


def rate_for_category(category: int) -> int:
    """Tax rate in basis points for a product category."""
    if category == CATEGORY_FOOD or category == CATEGORY_BOOKS:
        return REDUCED_BPS
    if category == CATEGORY_EXPORT:
        return ZERO_BPS
    return STANDARD_BPS


def tax_on_net(net_cents: int, rate_bps: int) -> int:
    """Tax due on a price quoted without tax, rounded half up."""
    return (net_cents * rate_bps + BPS_PER_UNIT // 2) // BPS_PER_UNIT


def gross_from_net(net_cents: int, rate_bps: int) -> int:
    return net_cents + tax_on_net(net_cents, rate_bps)


def net_from_gross(gross_cents: int, rate_bps: int) -> int:
    """The price without tax hidden in a tax-inclusive price."""
    divisor: int = BPS_PER_UNIT + rate_bps
    return (gross_cents * BPS_PER_UNIT + divisor // 2) // divisor


def tax_in_gross(gross_cents: int, rate_bps: int) -> int:
    return gross_cents - net_from_gross(gross_cents, rate_bps)


def effective_rate_bps(net_cents: int, tax_cents: int) -> int:
    """The rate an invoice ended up charging, for reports that mix categories."""
    if net_cents == 0:
        return 0
    return (tax_cents * BPS_PER_UNIT + net_cents // 2) // net_cents


def main() -> None:
    rate: int = rate_for_category(CATEGORY_FOOD)
    print(rate)
    print(tax_on_net(1000, rate))
    print(gross_from_net(1000, STANDARD_BPS))
    print(net_from_gross(1200, STANDARD_BPS))
    print(tax_in_gross(1199, STANDARD_BPS))


if __name__ == "__main__":
    main()

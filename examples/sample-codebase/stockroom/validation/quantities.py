"""Checks on quantities and prices of incoming orders and goods receipts."""

MAX_QUANTITY_PER_LINE: int = 10000
MAX_LINES_PER_ORDER: int = 200
MAX_UNIT_PRICE_CENTS: int = 5000000

OK: int = 0
ERR_NOT_POSITIVE: int = 1
ERR_TOO_LARGE: int = 2
ERR_NOT_MULTIPLE: int = 3
ERR_PRICE: int = 4


def check_quantity(quantity: int, case_size: int) -> int:
    """OK, or the first rule a line's quantity breaks."""
    if quantity <= 0:
        return ERR_NOT_POSITIVE
    if quantity > MAX_QUANTITY_PER_LINE:
        return ERR_TOO_LARGE
    if case_size > 1 and quantity % case_size != 0:
        return ERR_NOT_MULTIPLE
    return OK


def check_price(unit_price_cents: int) -> int:
    if unit_price_cents < 0 or unit_price_cents > MAX_UNIT_PRICE_CENTS:
        return ERR_PRICE
    return OK


def check_line(quantity: int, case_size: int, unit_price_cents: int) -> int:
    result: int = check_quantity(quantity, case_size)
    if result != OK:
        return result
    return check_price(unit_price_cents)


def round_to_case(quantity: int, case_size: int) -> int:
    """The nearest whole number of cases, at least one case."""
    if case_size <= 1:
        return quantity
    cases: int = (quantity + case_size // 2) // case_size
    if cases < 1:
        cases = 1
    return cases * case_size


def receipt_within_tolerance(ordered: int, received: int, tolerance_percent: int) -> bool:
    """Suppliers may deliver a few percent more or less than ordered."""
    difference: int = received - ordered
    if difference < 0:
        difference = -difference
    return difference * 100 <= ordered * tolerance_percent


def main() -> None:
    print(check_line(48, 12, 1999))
    print(check_line(50, 12, 1999))
    print(round_to_case(50, 12))
    print(receipt_within_tolerance(100, 103, 5))


if __name__ == "__main__":
    main()

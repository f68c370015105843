"""Currency conversion with rates held as integers of millionths, so sums never drift."""

from typing import Dict

RATE_SCALE: int = 1000000

# Units of each currency per euro, in millionths, as the treasury publishes them every morning.
RATES_PER_EUR: Dict[str, int] = {
    "EUR": 1000000,
    "USD": 1084500,
    "GBP": 855200,
    "CHF": 956300,
    "SEK": 11402000,
    "JPY": 162310000,
}

# Currencies without minor units.
ZERO_DECIMAL = {"JPY"}


def supported(code: str) -> bool:
    return code in RATES_PER_EUR


def convert_minor_units(amount: int, source: str, target: str) -> int:
    """Convert an amount in the source currency's minor units into the target's, rounding half up."""
    if source not in RATES_PER_EUR or target not in RATES_PER_EUR:
        raise KeyError(f"unsupported currency pair {source}/{target}")
    scale_in = 1 if source in ZERO_DECIMAL else 100
    scale_out = 1 if target in ZERO_DECIMAL else 100
    numerator = amount * RATES_PER_EUR[target] * scale_out
    denominator = RATES_PER_EUR[source] * scale_in
    return (2 * numerator + denominator) // (2 * denominator)


def format_amount(amount: int, code: str) -> str:
    if code in ZERO_DECIMAL:
        return f"{amount} {code}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {code}"


def cross_rate(source: str, target: str) -> float:
    return RATES_PER_EUR[target] / RATES_PER_EUR[source]


if __name__ == "__main__":
    print(format_amount(convert_minor_units(1999, "EUR", "USD"), "USD"))
    print(format_amount(convert_minor_units(1999, "EUR", "JPY"), "JPY"))

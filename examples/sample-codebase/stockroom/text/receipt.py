"""Printed receipts for the shop counter: fixed-width lines for the thermal printer."""

from dataclasses import dataclass
from typing import List

WIDTH = 42


@dataclass
class ReceiptLine:
    description: str
    quantity: int
    unit_cents: int


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def two_columns(left: str, right: str, width: int = WIDTH) -> str:
    """Left text and right-aligned amount on one line, the left text cut to fit."""
    room = width - len(right) - 1
    if len(left) > room:
        left = left[: room - 1] + "~"
    return left + " " * (width - len(left) - len(right)) + right


def render(shop: str, lines: List[ReceiptLine], tax_cents: int) -> str:
    out = [shop.center(WIDTH), "=" * WIDTH]
    total = 0
    for line in lines:
        amount = line.quantity * line.unit_cents
        total += amount
        label = line.description if line.quantity == 1 else f"{line.quantity} x {line.description}"
        out.append(two_columns(label, money(amount)))
    out.append("-" * WIDTH)
    out.append(two_columns("of which tax", money(tax_cents)))
    out.append(two_columns("TOTAL", money(total)))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render("STOCKROOM OUTLET", [ReceiptLine("Kettle 1.7 L", 1, 3499), ReceiptLine("Descaler", 3, 450)], 808))

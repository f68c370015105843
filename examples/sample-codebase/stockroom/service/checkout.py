"""Checkout: turns a basket into priced order lines, tax, shipping and a total."""

from dataclasses import dataclass
from typing import List

from stockroom.models.order_line import OrderLine
from stockroom.pricing.discounts import volume_discount_bps
from stockroom.pricing.shipping_rates import quote_cents
from stockroom.pricing.tax import STANDARD_BPS

FREE_SHIPPING_THRESHOLD_CENTS = 7500


@dataclass
class BasketItem:
    sku: int
    quantity: int
    unit_price_cents: int
    weight_grams: int


@dataclass
class Quote:
    lines: List[OrderLine]
    subtotal_cents: int
    tax_cents: int
    shipping_cents: int
    total_cents: int


def price_lines(items: List[BasketItem], customer_discount_bps: int) -> List[OrderLine]:
    lines = []
    for item in items:
        discount = min(volume_discount_bps(item.quantity) + customer_discount_bps, 5000)
        lines.append(OrderLine(item.sku, item.quantity, item.unit_price_cents, discount, STANDARD_BPS))
    return lines


def quote(items: List[BasketItem], zone: int, customer_discount_bps: int = 0) -> Quote:
    """Everything the checkout page shows; raises ValueError for an empty basket or an unshippable one."""
    if not items:
        raise ValueError("the basket is empty")
    lines = price_lines(items, customer_discount_bps)
    subtotal = sum(line.net_cents() for line in lines)
    tax = sum(line.tax_cents() for line in lines)
    weight = sum(item.weight_grams * item.quantity for item in items)
    shipping = quote_cents(weight, zone, subtotal, FREE_SHIPPING_THRESHOLD_CENTS)
    if shipping < 0:
        raise ValueError(f"no carrier takes {weight} g to zone {zone}")
    return Quote(lines, subtotal, tax, shipping, subtotal + tax + shipping)


if __name__ == "__main__":
    basket = [BasketItem(40012, 2, 3499, 1450), BasketItem(40077, 12, 450, 300)]
    print(quote(basket, zone=1))

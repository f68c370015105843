"""One line of an order: a product, how many, at what price, with which discount."""

from dataclasses import dataclass

BPS_PER_UNIT: int = 10000


@dataclass
class OrderLine:
    sku: int
    quantity: int
    unit_price_cents: int
    discount_bps: int
    tax_bps: int

    def gross_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    def discount_cents(self) -> int:
        """Discount on the whole line, rounded half up to the cent."""
        return (self.gross_cents() * self.discount_bps + BPS_PER_UNIT // 2) // BPS_PER_UNIT

    def net_cents(self) -> int:
        return self.gross_cents() - self.discount_cents()

    def tax_cents(self) -> int:
        return (self.net_cents() * self.tax_bps + BPS_PER_UNIT // 2) // BPS_PER_UNIT

    def total_cents(self) -> int:
        return self.net_cents() + self.tax_cents()

    def effective_unit_cents(self) -> int:
        """What one unit cost after discount, for the invoice's unit price column."""
        if self.quantity == 0:
            return 0
        return self.net_cents() // self.quantity

    def is_valid(self) -> bool:
        if self.quantity <= 0 or self.unit_price_cents < 0:
            return False
        return self.discount_bps >= 0 and self.discount_bps <= BPS_PER_UNIT


def main() -> None:
    line = OrderLine(40012, 3, 3499, 1000, 2000)
    print(line.gross_cents())
    print(line.discount_cents())
    print(line.total_cents())
    print(line.effective_unit_cents())
    print(line.is_valid())


if __name__ == "__main__":
    main()

"""Products as the catalogue holds them, with the physical facts shipping needs."""

from dataclasses import dataclass

# Carriers bill the larger of the real weight and the volume divided by this figure (cm3 per kg).
DIMENSIONAL_DIVISOR: int = 5000
OVERSIZE_EDGE_MM: int = 1200
HEAVY_GRAMS: int = 20000


@dataclass
class Product:
    sku: int
    price_cents: int
    weight_grams: int
    length_mm: int
    width_mm: int
    height_mm: int
    fragile: bool

    def volume_cm3(self) -> int:
        """Outer volume of the packed product in cubic centimetres, rounded up."""
        cubic_mm: int = self.length_mm * self.width_mm * self.height_mm
        return (cubic_mm + 999) // 1000

    def dimensional_grams(self) -> int:
        """Weight a carrier bills for the product's volume alone."""
        return self.volume_cm3() * 1000 // DIMENSIONAL_DIVISOR

    def billable_grams(self) -> int:
        """The larger of real and dimensional weight."""
        dimensional: int = self.dimensional_grams()
        if dimensional > self.weight_grams:
            return dimensional
        return self.weight_grams

    def longest_edge_mm(self) -> int:
        longest: int = self.length_mm
        if self.width_mm > longest:
            longest = self.width_mm
        if self.height_mm > longest:
            longest = self.height_mm
        return longest

    def is_oversize(self) -> bool:
        return self.longest_edge_mm() > OVERSIZE_EDGE_MM

    def is_heavy(self) -> bool:
        return self.weight_grams >= HEAVY_GRAMS

    def shipping_class(self) -> int:
        """0 letter, 1 small parcel, 2 parcel, 3 bulky freight."""
        if self.is_oversize() or self.is_heavy():
            return 3
        if self.billable_grams() > 2000:
            return 2
        if self.height_mm <= 30 and self.billable_grams() <= 500:
            return 0
        return 1

    def handling_fee_cents(self) -> int:
        fee: int = 0
        if self.fragile:
            fee += 250
        if self.shipping_class() == 3:
            fee += 1500
        return fee


def main() -> None:
    kettle = Product(40012, 3499, 1450, 260, 180, 240, False)
    print(kettle.volume_cm3())
    print(kettle.billable_grams())
    print(kettle.shipping_class())
    print(kettle.handling_fee_cents())


if __name__ == "__main__":
    main()

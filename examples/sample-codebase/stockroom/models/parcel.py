"""Parcels handed to carriers, and the carrier limits they must respect."""

from dataclasses import dataclass

MAX_WEIGHT_GRAMS: int = 31500
MAX_GIRTH_MM: int = 3000
MAX_LENGTH_MM: int = 1750


@dataclass
class Parcel:
    length_mm: int
    width_mm: int
    height_mm: int
    weight_grams: int
    insured_cents: int

    def girth_mm(self) -> int:
        """Length plus twice the width plus twice the height, as carriers measure it."""
        return self.length_mm + 2 * self.width_mm + 2 * self.height_mm

    def within_limits(self) -> bool:
        if self.weight_grams > MAX_WEIGHT_GRAMS:
            return False
        if self.length_mm > MAX_LENGTH_MM:
            return False
        return self.girth_mm() <= MAX_GIRTH_MM

    def insurance_fee_cents(self) -> int:
        """Free up to 500 euros, then 1% of the declared value, at least 2 euros."""
        if self.insured_cents <= 50000:
            return 0
        fee: int = (self.insured_cents - 50000) // 100
        if fee < 200:
            return 200
        return fee

    def needs_two_people(self) -> bool:
        return self.weight_grams > 25000


def main() -> None:
    parcel = Parcel(600, 400, 400, 12500, 80000)
    print(parcel.girth_mm())
    print(parcel.within_limits())
    print(parcel.insurance_fee_cents())


if __name__ == "__main__":
    main()

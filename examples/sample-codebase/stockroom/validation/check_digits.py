"""Check digits of barcodes (GTIN-8/12/13/14) and payment card numbers (Luhn)."""

from typing import List


def gtin_check_digit(body: List[int]) -> int:
    """The check digit for the digits of a GTIN without its last digit.

    Weights alternate 3 and 1 starting from the rightmost digit of the body.
    """
    total: int = 0
    weight: int = 3
    i: int = len(body) - 1
    while i >= 0:
        total += body[i] * weight
        if weight == 3:
            weight = 1
        else:
            weight = 3
        i -= 1
    return (10 - total % 10) % 10


def gtin_valid(digits: List[int]) -> bool:
    """Whether a full GTIN (with its check digit last) is well formed."""
    n: int = len(digits)
    if n != 8 and n != 12 and n != 13 and n != 14:
        return False
    body: List[int] = []
    for i in range(n - 1):
        body.append(digits[i])
    last: int = digits[n - 1]
    return gtin_check_digit(body) == last


def luhn_valid(digits: List[int]) -> bool:
    """The Luhn check used by card numbers and many loyalty cards."""
    total: int = 0
    double: bool = False
    i: int = len(digits) - 1
    while i >= 0:
        d: int = digits[i]
        if double:
            d = d * 2
            if d > 9:
                d -= 9
        total += d
        double = not double
        i -= 1
    return total % 10 == 0


def digits_of(number: int) -> List[int]:
    """Decimal digits of a non-negative number, most significant first."""
    reversed_digits: List[int] = []
    n: int = number
    if n == 0:
        reversed_digits.append(0)
    while n > 0:
        reversed_digits.append(n % 10)
        n = n // 10
    digits: List[int] = []
    i: int = len(reversed_digits) - 1
    while i >= 0:
        digits.append(reversed_digits[i])
        i -= 1
    return digits


def main() -> None:
    ean: List[int] = [4, 0, 0, 6, 3, 8, 1, 3, 3, 3, 9, 3, 1]
    print(gtin_valid(ean))
    print(luhn_valid([4, 5, 3, 9, 1, 4, 8, 8, 0, 3, 4, 3, 6, 4, 6, 7]))
    print(digits_of(90210))


if __name__ == "__main__":
    main()

"""Shapes of the identifiers people type: SKU codes, order numbers, bin labels."""


def is_sku_code(code: str) -> bool:
    """SKU codes are "SKU-" followed by six digits, such as SKU-004012."""
    if len(code) != 10:
        return False
    if not code.startswith("SKU-"):
        return False
    digits: str = code[4:]
    return digits.isdigit()


def is_order_number(text: str) -> bool:
    """Order numbers are eight to twelve digits."""
    return len(text) >= 8 and len(text) <= 12 and text.isdigit()


def is_bin_label(label: str) -> bool:
    """Bin labels look like "A12-3": an upper-case aisle letter, the aisle number, a dash and the level."""
    if len(label) < 4 or len(label) > 6:
        return False
    if not label[0:1].isupper():
        return False
    return label.endswith("-1") or label.endswith("-2") or label.endswith("-3") or label.endswith("-4")


def same_customer_email(first: str, second: str) -> bool:
    """Email addresses compare without case and surrounding blanks."""
    return first.strip().lower() == second.strip().lower()


def main() -> None:
    print(is_sku_code("SKU-004012"))
    print(is_order_number("20240117"))
    print(is_bin_label("A12-3"))
    print(same_customer_email("Ann@Example.org ", "ann@example.org"))


if __name__ == "__main__":
    main()

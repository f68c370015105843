"""Business constants shared across the service.

Money is always held in integer cents and rates in basis points (1 bps = 0.01%), so no value in this
module is a float unless it is a physical or statistical quantity.
"""

# Orders
MAX_LINES_PER_ORDER: int = 200
MAX_QUANTITY_PER_LINE: int = 10000
MIN_ORDER_CENTS: int = 500

# Tax and discounts, in basis points
DEFAULT_TAX_BPS: int = 2000
REDUCED_TAX_BPS: int = 700
MAX_DISCOUNT_BPS: int = 5000
BPS_PER_UNIT: int = 10000

# Warehouse
WAREHOUSE_COUNT: int = 4
AISLES_PER_WAREHOUSE: int = 24
LEVELS_PER_AISLE: int = 6
BIN_CAPACITY_UNITS: int = 400

# Shipping
FREE_SHIPPING_THRESHOLD_CENTS: int = 7500
DIMENSIONAL_DIVISOR: int = 5000
MAX_PARCEL_WEIGHT_GRAMS: int = 31500

# Forecasting
SERVICE_LEVEL_Z: float = 1.65
SMOOTHING_ALPHA: float = 0.3
LEAD_TIME_DAYS: int = 5


def is_valid_warehouse(warehouse_id: int) -> bool:
    """Warehouses are numbered from 1."""
    return warehouse_id >= 1 and warehouse_id <= WAREHOUSE_COUNT


def bin_count() -> int:
    """How many storage bins one warehouse has."""
    return AISLES_PER_WAREHOUSE * LEVELS_PER_AISLE


def total_capacity_units() -> int:
    """Units the whole network can store when every bin is full."""
    return WAREHOUSE_COUNT * bin_count() * BIN_CAPACITY_UNITS


def qualifies_for_free_shipping(subtotal_cents: int) -> bool:
    return subtotal_cents >= FREE_SHIPPING_THRESHOLD_CENTS


def main() -> None:
    print(bin_count())
    print(total_capacity_units())
    print(qualifies_for_free_shipping(8000))


if __name__ == "__main__":
    main()

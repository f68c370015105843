"""Reorder points and safety stock from daily demand statistics."""

SERVICE_LEVEL_Z: float = 1.65  # about 95% of cycles without a stock-out


def safety_stock(demand_stddev_per_day: float, lead_time_days: int, z: float) -> float:
    """Units held back against demand variability during the supplier's lead time."""
    # The standard deviation over the lead time grows with its square root; Newton's method keeps this
    # module free of imports.
    root: float = float(lead_time_days)
    if root <= 0.0:
        return 0.0
    guess: float = root
    for step in range(20):
        guess = 0.5 * (guess + root / guess)
    return z * demand_stddev_per_day * guess


def reorder_point(mean_demand_per_day: float, lead_time_days: int, safety: float) -> int:
    """Stock level at which a purchase order goes out, rounded up to a whole unit."""
    level: float = mean_demand_per_day * lead_time_days + safety
    whole: int = int(level)
    if level > float(whole):
        whole += 1
    return whole


def needs_reorder(on_hand: int, on_order: int, reserved: int, point: int) -> bool:
    """Whether the units we can still promise have fallen to the reorder point."""
    available: int = on_hand + on_order - reserved
    return available <= point


def days_of_cover(on_hand: int, mean_demand_per_day: float) -> float:
    """How many days the stock lasts at the usual rate of sale."""
    if mean_demand_per_day <= 0.0:
        return 9999.0
    return on_hand / mean_demand_per_day


def order_up_to(target_level: int, on_hand: int, on_order: int, case_size: int) -> int:
    """Units to order to bring stock up to the target, in whole cases."""
    missing: int = target_level - on_hand - on_order
    if missing <= 0:
        return 0
    if case_size <= 1:
        return missing
    cases: int = (missing + case_size - 1) // case_size
    return cases * case_size


def main() -> None:
    safety: float = safety_stock(4.0, 9, SERVICE_LEVEL_Z)
    point: int = reorder_point(12.5, 9, safety)
    print(safety)
    print(point)
    print(needs_reorder(100, 20, 5, point))
    print(days_of_cover(100, 12.5))
    print(order_up_to(300, 100, 20, 24))


if __name__ == "__main__":
    main()

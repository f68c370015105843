"""Customers and their loyalty standing."""

from dataclasses import dataclass

TIER_THRESHOLDS_CENTS: int = 50000
POINTS_PER_EURO: int = 1
VIP_TIER: int = 3


@dataclass
class Customer:
    customer_id: int
    tier: int
    lifetime_spend_cents: int
    orders_count: int
    returns_count: int
    years_active: int

    def loyalty_points(self) -> int:
        """One point per whole euro spent, doubled from tier 2 on."""
        points: int = self.lifetime_spend_cents // 100 * POINTS_PER_EURO
        if self.tier >= 2:
            points = points * 2
        return points

    def next_tier_threshold_cents(self) -> int:
        """Spend needed for the next tier: each tier costs twice the one before."""
        threshold: int = TIER_THRESHOLDS_CENTS
        level: int = 0
        while level < self.tier:
            threshold = threshold * 2
            level += 1
        return threshold

    def cents_to_next_tier(self) -> int:
        missing: int = self.next_tier_threshold_cents() - self.lifetime_spend_cents
        if missing < 0:
            return 0
        return missing

    def return_rate_percent(self) -> float:
        if self.orders_count == 0:
            return 0.0
        return 100.0 * self.returns_count / self.orders_count

    def is_vip(self) -> bool:
        return self.tier >= VIP_TIER or self.years_active >= 10

    def average_order_cents(self) -> int:
        if self.orders_count == 0:
            return 0
        return self.lifetime_spend_cents // self.orders_count


def main() -> None:
    alice = Customer(7, 2, 182000, 41, 3, 4)
    print(alice.loyalty_points())
    print(alice.cents_to_next_tier())
    print(alice.return_rate_percent())
    print(alice.is_vip())


if __name__ == "__main__":
    main()

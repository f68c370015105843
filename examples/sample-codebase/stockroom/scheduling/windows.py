"""Delivery windows offered at checkout, as minutes after midnight."""

from dataclasses import dataclass

SLOT_MINUTES: int = 120
CUTOFF_MINUTES_BEFORE: int = 180


@dataclass
class DeliveryWindow:
    start_minute: int
    end_minute: int
    capacity: int
    booked: int

    def length_minutes(self) -> int:
        return self.end_minute - self.start_minute

    def contains(self, minute: int) -> bool:
        return self.start_minute <= minute and minute < self.end_minute

    def overlaps(self, other: "DeliveryWindow") -> bool:
        return self.start_minute < other.end_minute and other.start_minute < self.end_minute

    def has_room(self) -> bool:
        return self.booked < self.capacity

    def bookable_at(self, now_minute: int) -> bool:
        """Windows close for booking a fixed time before they start, so the van can be loaded."""
        return self.has_room() and now_minute <= self.start_minute - CUTOFF_MINUTES_BEFORE

    def utilisation_percent(self) -> int:
        if self.capacity == 0:
            return 100
        return self.booked * 100 // self.capacity


def slot_start(minute: int) -> int:
    """Start of the fixed slot a minute falls in."""
    return minute - minute % SLOT_MINUTES


def main() -> None:
    morning = DeliveryWindow(480, 600, 12, 9)
    late = DeliveryWindow(540, 660, 12, 3)
    print(morning.length_minutes())
    print(morning.bookable_at(290))
    print(morning.utilisation_percent())
    print(morning.overlaps(late))
    print(slot_start(545))


if __name__ == "__main__":
    main()

"""Storage bins: where units sit in a warehouse, and how full each one is."""

from dataclasses import dataclass

LEVELS_PER_AISLE: int = 6


@dataclass
class StorageBin:
    warehouse_id: int
    aisle: int
    level: int
    capacity_units: int
    used_units: int
    reserved_units: int

    def free_units(self) -> int:
        free: int = self.capacity_units - self.used_units - self.reserved_units
        if free < 0:
            return 0
        return free

    def fill_ratio(self) -> float:
        if self.capacity_units == 0:
            return 1.0
        return float(self.used_units + self.reserved_units) / float(self.capacity_units)

    def can_fit(self, units: int) -> bool:
        return units <= self.free_units()

    def is_pick_level(self) -> bool:
        """Levels 1 and 2 are reachable without a ladder."""
        return self.level <= 2

    def location_code(self) -> int:
        """A sortable number for pick routes: warehouse, aisle, level."""
        return self.warehouse_id * 10000 + self.aisle * 100 + self.level

    def walk_distance_m(self, from_aisle: int) -> int:
        """Metres walked along the main corridor from another aisle, 3 m per aisle."""
        steps: int = self.aisle - from_aisle
        if steps < 0:
            steps = -steps
        return steps * 3


def main() -> None:
    shelf = StorageBin(1, 12, 2, 400, 310, 40)
    print(shelf.free_units())
    print(shelf.fill_ratio())
    print(shelf.can_fit(60))
    print(shelf.location_code())
    print(shelf.walk_distance_m(4))


if __name__ == "__main__":
    main()

"""The daily summary mailed to the operations team: orders, revenue and stock alerts per warehouse."""

from dataclasses import dataclass, field
from typing import Dict, List


@dataclass
class OrderRecord:
    order_id: int
    warehouse: str
    total_cents: int
    lines: int
    late: bool


@dataclass
class WarehouseSummary:
    orders: int = 0
    revenue_cents: int = 0
    lines: int = 0
    late: int = 0
    low_stock_skus: List[int] = field(default_factory=list)


def summarise(orders: List[OrderRecord], low_stock: Dict[str, List[int]]) -> Dict[str, WarehouseSummary]:
    summary: Dict[str, WarehouseSummary] = {}
    for order in orders:
        entry = summary.setdefault(order.warehouse, WarehouseSummary())
        entry.orders += 1
        entry.revenue_cents += order.total_cents
        entry.lines += order.lines
        if order.late:
            entry.late += 1
    for warehouse, skus in low_stock.items():
        summary.setdefault(warehouse, WarehouseSummary()).low_stock_skus = sorted(skus)
    return summary


def render(summary: Dict[str, WarehouseSummary]) -> str:
    rows = ["warehouse  orders  revenue  lines  late  low stock"]
    for name in sorted(summary):
        s = summary[name]
        rows.append(
            f"{name:<9}  {s.orders:>6}  {s.revenue_cents / 100:>7.2f}  {s.lines:>5}  {s.late:>4}  "
            + (", ".join(str(sku) for sku in s.low_stock_skus) or "-")
        )
    return "\n".join(rows)


if __name__ == "__main__":
    records = [OrderRecord(1, "north", 7498, 2, False), OrderRecord(2, "south", 1299, 1, True)]
    print(render(summarise(records, {"north": [40077, 40012]})))

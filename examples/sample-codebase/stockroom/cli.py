"""The stockroom command line: quotes, stock checks and reorder advice from the terminal.

Examples: ``python -m stockroom.cli quote --zone 1 40012:2:3499:1450 40077:12:450:300`` prices a basket and
``python -m stockroom.cli reorder --mean 12.5 --stddev 4 --lead-time 9 --on-hand 100`` checks one product.
"""

import argparse
import sys
from typing import List, Optional

from stockroom.inventory.stock_levels import SERVICE_LEVEL_Z, reorder_point, safety_stock
from stockroom.service.checkout import BasketItem, quote


def parse_item(text: str) -> BasketItem:
    """SKU:QUANTITY:UNIT_CENTS:GRAMS"""
    try:
        sku, quantity, cents, grams = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SKU:QUANTITY:UNIT_CENTS:GRAMS, got {text!r}") from None
    return BasketItem(sku, quantity, cents, grams)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockroom", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    quote_cmd = commands.add_parser("quote", help="price a basket")
    quote_cmd.add_argument("--zone", type=int, default=0)
    quote_cmd.add_argument("--discount-bps", type=int, default=0)
    quote_cmd.add_argument("items", nargs="+", type=parse_item)

    reorder_cmd = commands.add_parser("reorder", help="reorder point for one product")
    reorder_cmd.add_argument("--mean", type=float, required=True, help="mean daily demand")
    reorder_cmd.add_argument("--stddev", type=float, required=True, help="daily demand standard deviation")
    reorder_cmd.add_argument("--lead-time", type=int, required=True, help="supplier lead time in days")
    reorder_cmd.add_argument("--on-hand", type=int, required=True)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "quote":
        try:
            result = quote(args.items, args.zone, args.discount_bps)
        except ValueError as err:
            print(f"stockroom: {err}", file=sys.stderr)
            return 1
        for line in result.lines:
            print(f"{line.sku:>8} x{line.quantity:<4} {line.net_cents() / 100:>10.2f}")
        print(f"{'tax':>14} {result.tax_cents / 100:>10.2f}")
        print(f"{'shipping':>14} {result.shipping_cents / 100:>10.2f}")
        print(f"{'total':>14} {result.total_cents / 100:>10.2f}")
        return 0
    safety = safety_stock(args.stddev, args.lead_time, SERVICE_LEVEL_Z)
    point = reorder_point(args.mean, args.lead_time, safety)
    verdict = "reorder now" if args.on_hand <= point else "enough stock"
    print(f"reorder point {point} units (safety stock {safety:.1f}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

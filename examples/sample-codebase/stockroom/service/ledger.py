"""The stock ledger: every movement of a product as a signed quantity, and the balances it implies.

Movements are kept in parallel lists (kind, quantity) as they come from the ledger table.
"""

from typing import List

RECEIPT: int = 1
SHIPMENT: int = 2
ADJUSTMENT: int = 3
RETURN: int = 4


def signed_quantity(kind: int, quantity: int) -> int:
    """Receipts and returns add stock, shipments remove it, adjustments carry their own sign."""
    if kind == SHIPMENT:
        return -quantity
    return quantity


def running_balance(kinds: List[int], quantities: List[int], opening: int) -> List[int]:
    """Balance after each movement."""
    balances: List[int] = []
    balance: int = opening
    for i in range(len(kinds)):
        balance += signed_quantity(kinds[i], quantities[i])
        balances.append(balance)
    return balances


def first_negative(balances: List[int]) -> int:
    """Index of the first movement that drove stock below zero, or -1: a booking error to investigate."""
    for i in range(len(balances)):
        if balances[i] < 0:
            return i
    return -1


def total_of_kind(kinds: List[int], quantities: List[int], wanted: int) -> int:
    total: int = 0
    for i in range(len(kinds)):
        if kinds[i] == wanted:
            total += quantities[i]
    return total


def return_rate_percent(kinds: List[int], quantities: List[int]) -> int:
    shipped: int = total_of_kind(kinds, quantities, SHIPMENT)
    if shipped == 0:
        return 0
    return total_of_kind(kinds, quantities, RETURN) * 100 // shipped


def main() -> None:
    kinds: List[int] = [RECEIPT, SHIPMENT, SHIPMENT, RETURN, ADJUSTMENT, SHIPMENT]
    quantities: List[int] = [120, 30, 45, 5, -2, 60]
    balances: List[int] = running_balance(kinds, quantities, 10)
    print(balances)
    print(first_negative(balances))
    print(return_rate_percent(kinds, quantities))


if __name__ == "__main__":
    main()

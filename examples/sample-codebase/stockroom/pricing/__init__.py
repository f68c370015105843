"""Prices, taxes, discounts, currencies and shipping rates, all in integer cents."""

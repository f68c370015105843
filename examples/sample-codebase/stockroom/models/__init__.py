"""Plain data records of the domain: products, order lines, customers, bins and parcels."""

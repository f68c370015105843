"""Text helpers: URL slugs, fuzzy matching of product names, search tokens and printed receipts."""

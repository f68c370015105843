"""The application layer: checkout, the stock ledger, domain events and daily summaries."""

"""Dates, delivery windows, picking shifts, rate limits and retry timing."""

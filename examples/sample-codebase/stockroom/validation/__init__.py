"""Checks on identifiers, quantities and addresses before anything reaches the database."""

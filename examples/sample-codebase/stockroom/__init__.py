"""Stockroom: inventory, pricing and order handling for a small warehouse business.

The packages are layered: ``models`` and ``algorithms`` depend on nothing, ``pricing``, ``inventory``,
``validation``, ``scheduling`` and ``text`` build on them, and ``service`` ties everything together for the
command line in ``stockroom.cli``.
"""

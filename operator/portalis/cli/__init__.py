"""Command-line entry points: ``portalis`` and the ``kubectl portalis`` plugin."""

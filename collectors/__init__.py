"""Collectors: one module per source, the interface in ``base.py``, ``runner.py`` persists."""

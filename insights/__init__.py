"""Pure insight functions: DataFrames in, DataFrames or dataclasses out (no DB, no clock)."""

"""Paths the dashboard tests share (a plain module: ``conftest`` is not importable by name
when several conftest.py files exist)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
APP = ROOT / "dashboard" / "app.py"
DEMO_CONFIG = ROOT / "examples" / "demo.toml"

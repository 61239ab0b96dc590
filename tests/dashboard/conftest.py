"""Fixtures for the dashboard tests: a realistic database (``dataset.py``) and the environment the
app reads its settings from."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
APP = ROOT / "dashboard" / "app.py"
DEMO_CONFIG = ROOT / "examples" / "demo.toml"
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402


@pytest.fixture
def filled_db(db_url):
    """``(url, Dataset)``: the realistic dataset ending now, in a fresh database."""
    from store.db import connect

    engine = connect(db_url)
    try:
        ds = dataset.build(engine, end=datetime.now(UTC))
    finally:
        engine.dispose()
    return db_url, ds


@pytest.fixture
def app_env(monkeypatch):
    """Point the app at a database (and a bind address) for AppTest; caches cleared around it."""
    import streamlit as st
    from streamlit import config

    before = config.get_option("server.address")

    def _use(url: str, *, address: str = "127.0.0.1") -> None:
        monkeypatch.setenv("PIPEPULSE_DATABASE_URL", url)
        monkeypatch.setenv("PIPEPULSE_CONFIG", str(DEMO_CONFIG))
        monkeypatch.setattr(sys, "argv", [str(APP)])
        st.cache_data.clear()
        st.cache_resource.clear()
        config.set_option("server.address", address)

    yield _use
    st.cache_data.clear()
    st.cache_resource.clear()
    config.set_option("server.address", before)

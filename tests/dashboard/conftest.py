"""Fixtures for the dashboard tests: a realistic database (``dash_dataset.py``) and the environment the
app reads its settings from."""

from __future__ import annotations

import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dash_dataset as dataset  # noqa: E402
from dash_paths import APP, DEMO_CONFIG  # noqa: E402

TEST_DBS = [d.strip() for d in os.environ.get("PIPEPULSE_TEST_DBS", "sqlite").split(",") if d.strip()]
PG_ADMIN_URL = os.environ.get("PIPEPULSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module", params=TEST_DBS)
def shared_db(request, tmp_path_factory):
    """``(url, Dataset, kind)``: the dataset in a database of its own, shared by a module's tests
    (tests that change rows use rows no other test of the module reads)."""
    from store.db import connect, upgrade

    kind = request.param
    admin = name = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('dash-sqlite') / 'dash.db'}"
    else:
        name = f"pp_dash_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = connect(url)
    upgrade(engine)
    ds = dataset.build(engine, end=datetime.now(UTC))
    engine.dispose()
    yield url, ds, kind
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def filled_db(shared_db):
    """``(url, Dataset)`` of the module's shared dataset."""
    return shared_db[0], shared_db[1]


@pytest.fixture
def fresh_filled_db(db_url):
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

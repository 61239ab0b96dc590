from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipepulse.errors import SchemaError, StoreError
from store.db import check_schema, connect, schema_status, upgrade
from store.schema import metadata


def test_upgrade_is_a_noop_when_at_head(engine):
    before = schema_status(engine)
    assert before.up_to_date
    after = upgrade(engine)
    assert after.current == before.current == before.head
    tables = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables


def test_empty_sqlite_is_migrated_and_checked(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(SchemaError, match="pipepulse db upgrade"):
        check_schema(engine)
    status = upgrade(engine)
    assert status.up_to_date
    check_schema(engine)


def test_database_newer_than_code_is_refused(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaError, match="newer than this version of pipepulse"):
        upgrade(engine)
    with pytest.raises(SchemaError, match="9999_from_the_future"):
        check_schema(engine)


def test_unreachable_postgres_names_host_and_port():
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1 "):
        connect("postgresql+psycopg://postgres@127.0.0.1:1/nope")


def test_unwritable_data_folder_is_named(tmp_path):
    # A regular file where the folder should be: unwritable even for root (CI runs as root).
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=r"cannot create the data folder .*data/sub"):
        connect(f"sqlite:///{blocker / 'sub' / 'x.db'}")


def test_the_head_read_from_the_migration_files_is_alembics():
    from alembic.script import ScriptDirectory

    from store.db import MIGRATIONS, _head_from_files

    # check_schema's quick path (no alembic import) must agree with alembic on the head
    assert _head_from_files() == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_one_head_and_0002_adds_the_forecast_model_columns_keeping_snapshots(engine):
    from alembic import command
    from alembic.script import ScriptDirectory

    from store.db import MIGRATIONS, _alembic_config

    script = ScriptDirectory(str(MIGRATIONS))
    assert len(script.get_heads()) == 1 and script.get_revision("0002").down_revision == "0001"
    cfg = _alembic_config(engine)
    command.downgrade(cfg, "0001")
    try:
        cols = {c["name"] for c in sa.inspect(engine).get_columns("forecast_snapshots")}
        assert "model" not in cols
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO forecast_snapshots (created_at, method, subject, level, mase) "
                "VALUES ('2026-12-01 06:00:00+00:00', 'pipepulse', 'total', 0.8, 0.7)"
            ))
    finally:
        status = upgrade(engine)
    assert status.current == script.get_current_head() and status.up_to_date
    cols = {c["name"] for c in sa.inspect(engine).get_columns("forecast_snapshots")}
    assert {"model", "backtest_mae", "mae_last_value", "mae_seasonal_naive"} <= cols
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT subject, mase, model, backtest_mae FROM forecast_snapshots")).one()
    assert tuple(row) == ("total", 0.7, None, None)


def test_0003_adds_the_audit_log_and_drops_it_on_the_way_down(engine):
    from alembic import command

    from store.db import _alembic_config

    assert "audit_log" in sa.inspect(engine).get_table_names()
    command.downgrade(_alembic_config(engine), "0002")
    try:
        assert "audit_log" not in sa.inspect(engine).get_table_names()
    finally:
        status = upgrade(engine)
    assert status.current == status.head
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("audit_log")}
    assert indexes == {"ix_audit_log_actor_at", "ix_audit_log_client_at"}


def _head() -> str:
    from alembic.script import ScriptDirectory

    from store.db import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def test_0005_h17l_adds_lambda_invocations_and_drops_it_on_the_way_down(engine):
    from alembic import command

    from store.db import _alembic_config

    assert "lambda_invocations" in sa.inspect(engine).get_table_names()
    command.downgrade(_alembic_config(engine), "0004_h22c")
    try:
        assert "lambda_invocations" not in sa.inspect(engine).get_table_names()
    finally:
        status = upgrade(engine)
    assert status.current == _head()
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("lambda_invocations")}
    assert indexes == {"ix_lambda_invocations_function_name_ended_at", "ix_lambda_invocations_pipeline_ended_at"}


def test_0006_h20a_adds_the_airflow_step_columns_and_drops_them_on_the_way_down(engine):
    from alembic import command

    from store.db import _alembic_config

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO run_steps (run_id, stage, attempt, status, updated_at, operator, map_index) "
                             "VALUES ('airflow:d:r', 'square[2]', 1, 'SUCCEEDED', '2026-12-05 10:00:00+00:00', '@task', 2)"))
    command.downgrade(_alembic_config(engine), "0005_h17l")
    try:
        cols = {c["name"] for c in sa.inspect(engine).get_columns("run_steps")}
        assert not {"operator", "map_index"} & cols
    finally:
        upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT stage, operator, map_index FROM run_steps")).one()
    assert tuple(row) == ("square[2]", None, None)  # the step kept; the columns came back empty

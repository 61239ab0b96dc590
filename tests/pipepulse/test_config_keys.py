"""The config's shape (``pipepulse.settings.CONFIG_KEYS``): typos are refused at load with the
file, the line and the closest declared name, and the declaration matches the code it describes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipepulse.errors import ConfigError
from pipepulse.settings import CONFIG_KEYS, Prices, known_keys, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[budgets]\nmonthly_x = 1\nmontly = 2600.0\n",
         "pipepulse.toml:2: [budgets] monthly_x: unknown key; did you mean monthly? (and 1 more unknown names)"),
        ("[pipepulse]\ncurrency = 'USD'\ndashbord_url = 'http://x'\n",
         "pipepulse.toml:3: [pipepulse] dashbord_url: unknown key; did you mean dashboard_url?"),
        ("[collector.ce]\nenabled = true\n", "pipepulse.toml:1: [collector.ce]: unknown table; did you mean [collectors.ce]?"),
        ("[budgets]\nmonthly = 1\n\n[pipline]\nsource = 's3://x'\n",
         "pipepulse.toml:4: [pipline]: unknown table; did you mean [pipeline]?"),
        ("[collectors.ce]\nbackfil_days = 3\n",
         "pipepulse.toml:2: [collectors.ce] backfil_days: unknown key; did you mean backfill_days?"),
        ("[collectors.costexplorer]\nenabled = true\n",
         "pipepulse.toml:1: [collectors.costexplorer]: unknown table; known tables: airflow, athena, ce, cloudwatch, cur, focus, glue, logs, "
         "reference, stepfunctions"),
        ("dashbord_url = 'http://x'\n",
         "pipepulse.toml:1: dashbord_url: unknown key outside any table; did you mean [pipepulse] dashboard_url?"),
        ("[[pipelines]]\nname = 'a'\n[[pipelines]]\nname = 'b'\nshedule = '0 * * * *'\n",
         "pipepulse.toml:5: [pipelines] shedule: unknown key; did you mean schedule?"),
        ("[alerts.smtp]\nhots = 'mail'\n", "pipepulse.toml:2: [alerts.smtp] hots: unknown key; did you mean host?"),
        ("[anomalies]\nsensitivity = 2\n[[anomalies.planned]]\nsubjct = 'x'\n",
         "pipepulse.toml:4: [anomalies.planned] subjct: unknown key; did you mean subject?"),
    ],
)
def test_typos_are_refused_with_file_line_and_closest_name(tmp_path, text, message):
    path = tmp_path / "pipepulse.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings({}, config_path=path)
    assert str(err.value) == f"{path.parent}/{message}"


def test_names_the_user_chooses_are_not_checked(tmp_path):
    path = tmp_path / "pipepulse.toml"
    path.write_text("[budgets.pipelines]\norders = 5.0\n[anomalies.metric_floors]\nRetries = 3\n"
                    "[collectors.logs.log_groups]\nextract = '/aws/x'\n")
    s = load_settings({}, config_path=path)
    assert s.budgets_by_pipeline == {"orders": 5.0}


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_use_only_declared_keys(example):
    load_settings({}, config_path=example)


def test_declaration_matches_the_code_it_describes():
    from collectors.runner import SOURCES
    from jobs.detect import AnomalySettings
    from jobs.registry import JOBS
    from pipepulse.alert_rules import _COMMON, _KIND_OPTIONS
    from store.retention import PRUNABLE

    assert {k for k, v in CONFIG_KEYS["collectors"].items() if isinstance(v, dict)} == set(SOURCES)
    assert known_keys("schedule") == {j.name for j in JOBS if not j.per_source} | {"lock_ttl_minutes"}
    assert known_keys("retention") == {f"{t}_days" for t in PRUNABLE} | {"batch_size"}
    assert known_keys("anomalies") == {f.name for f in dataclasses.fields(AnomalySettings)}
    assert known_keys("alerts.rules") == _COMMON.union(*_KIND_OPTIONS.values())
    assert known_keys("prices") == {f.name for f in dataclasses.fields(Prices)}

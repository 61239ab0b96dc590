"""Secrets stay out of output, files stay private, writes do not follow planted links. Findings of
issue #19 replayed here: ``demo build`` printed the full database URL; a URL without a scheme was
echoed in the error; an ``@`` in the password leaked part of it; the SQLite database and backups
were created world-readable; ``db backup`` wrote through a symlink planted at ``<dest>.partial``;
the SMTP password was sent in clear with ``security = "none"`` and a username;
``hash-password`` accepted ``a``.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from cli.main import main
from pipepulse.errors import ConfigError
from pipepulse.redact import mask_url


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize(("url", "masked"), [
    ("postgresql+psycopg://pp:s3cret@db:5432/x", "postgresql+psycopg://pp:***@db:5432/x"),
    ("postgresql+psycopg://pp:s3c@ret@db:5432/x", "postgresql+psycopg://pp:***@db:5432/x"),
    ("postgresql://pp@db/x", "postgresql://pp@db/x"),
    ("sqlite:///data/pipepulse.db", "sqlite:///data/pipepulse.db"),
    ("pp:s3cret@db/x", "pp:***@db/x"),
    ("cannot reach postgresql://a:b@c/d and postgresql://e:f@g/h", "cannot reach postgresql://a:***@c/d and postgresql://e:***@g/h"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_demo_build_prints_the_url_masked(monkeypatch, tmp_path, capsys):
    from cli.commands import demo as demo_cmd
    from pipepulse.settings import load_settings

    url = f"postgresql+psycopg://pp:s3cretpw@127.0.0.1:5432/{'x' * 3}"
    settings = load_settings({"PIPEPULSE_DATABASE_URL": url, "PIPEPULSE_DATA_DIR": str(tmp_path)})
    summary = SimpleNamespace(end=datetime(2026, 11, 20, tzinfo=UTC), steps=[("backfill", 1.0, "90 days")], extra={}, counts={"runs": 3})
    fake = SimpleNamespace(reset_demo_dir=lambda s: None, default_end=lambda: summary.end,
                           build_demo=lambda *a, **k: summary)
    monkeypatch.setattr(demo_cmd, "_devkit_demo", lambda: fake)
    monkeypatch.setattr("store.db.connect", lambda *a, **k: SimpleNamespace(dispose=lambda: None))
    monkeypatch.setattr("store.db.upgrade", lambda engine: None)
    demo_cmd._build(settings, 90, SimpleNamespace(server=None))
    out = capsys.readouterr().out
    assert "s3cretpw" not in out
    assert "postgresql+psycopg://pp:***@127.0.0.1:5432/xxx" in out


def test_sqlite_database_data_folder_and_wal_are_private(tmp_path):
    from store.db import connect, upgrade

    folder = tmp_path / "fresh" / "data"
    engine = connect(f"sqlite:///{folder / 'pipepulse.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")
        for name in ("pipepulse.db", "pipepulse.db-wal", "pipepulse.db-shm"):
            assert _mode(folder / name) == 0o600, name
    engine.dispose()
    assert _mode(folder) == 0o700 and _mode(folder.parent) == 0o700


def test_the_reference_ledger_is_private(tmp_path):
    from store.ledger import LedgerFile

    ledger = LedgerFile(tmp_path / "ledger" / "runs.db")
    ledger.close()
    assert _mode(tmp_path / "ledger" / "runs.db") == 0o600


@pytest.fixture
def live_db(tmp_path):
    from store.db import connect, upgrade

    path = tmp_path / "live.db"
    engine = connect(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return f"sqlite:///{path}"


def test_backups_are_private(live_db, tmp_path):
    from store.backup import backup_sqlite

    result = backup_sqlite(live_db, tmp_path / "b.db")
    assert _mode(result.path) == 0o600


def test_backup_refuses_a_symlink_at_the_partial_file_and_at_the_destination(live_db, tmp_path):
    from pipepulse.errors import InputError
    from store.backup import backup_sqlite

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "b.db.partial").symlink_to(victim)
    with pytest.raises(InputError, match=r"b\.db\.partial is a symbolic link; refusing to write through it"):
        backup_sqlite(live_db, tmp_path / "b.db")
    assert victim.read_text() == "keep me"
    assert (tmp_path / "b.db.partial").is_symlink()  # left for the owner to look at
    (tmp_path / "c.db").symlink_to(victim)
    with pytest.raises(InputError, match=r"c\.db is a symbolic link"):
        backup_sqlite(live_db, tmp_path / "c.db", overwrite=True)
    assert victim.read_text() == "keep me"


def test_output_files_are_private(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    spend = tmp_path / "spend.csv"
    spend.write_text("date,amount\n" + "".join(f"2026-10-{d:02d},{d}.0\n" for d in range(1, 29)))
    out = tmp_path / "fc.csv"
    assert main(["forecast", str(spend), "--horizon", "3", "--out", str(out), "--today", "2026-10-29"]) == 0
    assert _mode(out) == 0o600


def test_smtp_login_over_plain_text_is_refused(make_settings):
    from alerts.rules import load_alert_config

    settings = make_settings(
        '[alerts]\nchannel = "smtp"\nsender = "pp@example.com"\n'
        '[alerts.smtp]\nhost = "mail.example.com"\nsecurity = "none"\nusername = "pp"\npassword = "pw"\n'
    )
    with pytest.raises(ConfigError, match=r'security = "none" with a username would send the password in clear'):
        load_alert_config(settings)


def test_hash_password_refuses_weak_passwords(monkeypatch, capsys):
    for weak, why in (("a", "at least 12 characters"), ("aaaaaaaaaaaaaaaa", "more different characters"),
                      ("password1234", "too common")):
        monkeypatch.setattr(sys, "stdin", io.StringIO(weak + "\n"))
        assert main(["dashboard", "hash-password", "--password-stdin"]) == 1
        err = capsys.readouterr().err
        assert why in err and (len(weak) < 4 or weak not in err)  # the password is never echoed
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery staple\n"))
    assert main(["dashboard", "hash-password", "--password-stdin"]) == 0
    assert capsys.readouterr().out.startswith("scrypt$")


def test_the_demo_folder_and_its_files_are_private(tmp_path):
    """`make demo` made data/ and data/demo 0755 and its marker 0644 (new-user review #4)."""
    from devkit.demo import MARKER, reset_demo_dir
    from pipepulse.settings import load_settings

    folder = tmp_path / "data" / "demo"
    settings = load_settings({"PIPEPULSE_DATA_DIR": str(folder)})
    reset_demo_dir(settings)
    assert (_mode(folder.parent), _mode(folder), _mode(folder / MARKER)) == (0o700, 0o700, 0o600)
    (folder / "pipepulse.db").write_text("")
    reset_demo_dir(settings)  # a rebuild: the demo's own folder, emptied and made again
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]
    assert (_mode(folder), _mode(folder / MARKER)) == (0o700, 0o600)
    # an empty folder the user made for the demo is used as it is: its mode is the user's
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o750)
    os.chmod(mine, 0o750)
    reset_demo_dir(load_settings({"PIPEPULSE_DATA_DIR": str(mine)}))
    assert (_mode(mine), _mode(mine / MARKER)) == (0o750, 0o600)


def test_the_local_aws_advert_is_private(tmp_path):
    """The demo's data/demo/localaws.json was 0644 (new-user review #4)."""
    from cli.awsenv import advertise_local_aws
    from pipepulse.settings import load_settings

    folder = tmp_path / "data" / "demo"
    with advertise_local_aws(load_settings({"PIPEPULSE_DATA_DIR": str(folder)}), "http://127.0.0.1:5999") as advert:
        assert advert.parent == folder
        assert (_mode(folder.parent), _mode(folder), _mode(advert)) == (0o700, 0o700, 0o600)

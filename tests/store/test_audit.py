"""The audit log's storage on SQLite and PostgreSQL: what the login's rate limit reads back."""

from __future__ import annotations

from datetime import timedelta

from store.audit import finish, login_failures, recent, record


def test_failures_count_since_the_last_success_per_user_and_per_client(engine, now):
    t = [now - timedelta(minutes=m) for m in (50, 40, 30, 20, 10, 5)]
    with engine.begin() as conn:
        record(conn, at=t[0], action="login", outcome="failed", actor="ann", client="1.1.1.1")
        record(conn, at=t[1], action="login", outcome="ok", actor="ann", client="2.2.2.2")
        record(conn, at=t[2], action="login", outcome="failed", actor="ann", client="1.1.1.1")
        pending = record(conn, at=t[3], action="login", outcome="pending", actor="ann", client="1.1.1.1")
        record(conn, at=t[4], action="login", outcome="locked", actor="ann", client="1.1.1.1")
        record(conn, at=t[5], action="login", outcome="failed", actor="bob", client="1.1.1.1")
        record(conn, at=t[5], action="anomaly_acknowledged", outcome="ok", actor="ann", client="1.1.1.1", target="fp")
    with engine.connect() as conn:
        by_user, by_client = login_failures(conn, actor="ann", client="1.1.1.1", since=now - timedelta(hours=24))
        # ann: after her success at t1, the failure at t2 and the unfinished attempt at t3 (locked
        # attempts are refused unchecked and do not extend the lockout)
        assert by_user == [t[2], t[3]]
        # 1.1.1.1 never signed in: every failed or unfinished attempt from it, any user
        assert by_client == [t[0], t[2], t[3], t[5]]
        assert login_failures(conn, actor="ann", client="1.1.1.1", since=t[3]) == ([t[3]], [t[3], t[5]])
    with engine.begin() as conn:
        finish(conn, pending, "ok", "password, role admin")
    with engine.connect() as conn:
        assert login_failures(conn, actor="ann", client="1.1.1.1", since=now - timedelta(hours=24)) == ([], [t[5]])
        rows = recent(conn, limit=3)
    assert [(r["action"], r["outcome"], r["actor"]) for r in rows] == [
        ("anomaly_acknowledged", "ok", "ann"), ("login", "failed", "bob"), ("login", "locked", "ann")]
    assert rows[0]["at"] == t[5] and rows[0]["target"] == "fp"


def test_text_is_cut_and_cleaned(engine, now):
    with engine.begin() as conn:
        record(conn, at=now, action="login", outcome="failed", actor="a\x1b[31m" + "x" * 500, client="c\r\n", detail="d\x00")
    with engine.connect() as conn:
        (row,) = recent(conn, limit=1)
    assert row["actor"] == "a[31m" + "x" * 195 and row["client"] == "c\n" and row["detail"] == "d"

"""The access rules as pure functions: request decisions, the lockout's arithmetic, password
strength, the policy's own checks (the real server replays them in tests/security)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from pipepulse.access import (
    AccessPolicy,
    LoginLimits,
    check_request,
    host_name,
    login_lock,
    password_problem,
    policy_args,
    policy_from_args,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LOCAL = AccessPolicy(auth="none")
BEHIND = AccessPolicy(auth="password", bind="0.0.0.0", allowed_hosts=("dash.example.com",),
                      trusted_proxies=(ipaddress.ip_network("10.0.0.0/16"),))


@pytest.mark.parametrize(("header", "name"), [
    ("localhost:8501", "localhost"), ("LOCALHOST.", "localhost"), ("[::1]:8501", "[::1]"), ("127.0.0.1", "127.0.0.1"),
    ("dash.example.com:443", "dash.example.com"), ("", None), ("a b", None), ("x:y", None), ("user@host", None),
    ("[::1", None), ("[zz::1]:80", None), ("host:80:81", None),
])
def test_host_name(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize(("policy", "peer", "host", "origin", "headers", "status", "client"), [
    (LOCAL, "127.0.0.1", "localhost:8501", None, {}, 0, "127.0.0.1"),
    (LOCAL, "127.0.0.1", "localhost:8501", "http://localhost:8501", {}, 0, "127.0.0.1"),
    (LOCAL, "127.0.0.1", "attacker.example:8501", None, {}, 403, None),
    (LOCAL, "127.0.0.1", "localhost:8501", "http://attacker.example:8501", {}, 403, None),
    (LOCAL, "127.0.0.1", "localhost:8501", "null", {}, 403, None),
    (LOCAL, "127.0.0.1", None, None, {}, 400, None),
    (LOCAL, "127.0.0.1", "localhost", None, {"x-forwarded-for": "203.0.113.9"}, 403, None),
    (BEHIND, "10.0.1.5", "dash.example.com", "https://dash.example.com", {"x-forwarded-for": "203.0.113.9"}, 0, "203.0.113.9"),
    # a client's own X-Forwarded-For is kept to the left of the proxy's: the proxy's hop is what counts
    (BEHIND, "10.0.1.5", "dash.example.com", None, {"x-forwarded-for": "6.6.6.6, 203.0.113.9"}, 0, "203.0.113.9"),
    (BEHIND, "10.0.1.5", "dash.example.com", None, {"x-forwarded-for": "203.0.113.9, 10.0.2.2"}, 0, "203.0.113.9"),
    (BEHIND, "192.0.2.1", "dash.example.com", None, {"x-forwarded-for": "203.0.113.9"}, 403, None),
    (BEHIND, "10.0.1.5", "dash.example.com", None, {"x-forwarded-for": "not-an-ip"}, 400, None),
    (BEHIND, "10.0.1.5", "10.0.3.7:8501", None, {}, 403, None),
])
def test_check_request(policy, peer, host, origin, headers, status, client):
    decision = check_request(policy, peer=peer, host=host, origin=origin, headers=headers)
    assert (decision.status, decision.client) == (status, client), decision.reason


def test_health_answers_any_host_but_keeps_the_proxy_rule():
    assert check_request(BEHIND, peer="10.0.1.5", host="10.0.3.7:8501", origin=None, headers={}, path="/_stcore/health").status == 0
    assert check_request(LOCAL, peer="127.0.0.1", host="x", origin=None, headers={"forwarded": "for=1.2.3.4"},
                         path="/_stcore/health").status == 403


@pytest.mark.parametrize(("policy", "problem"), [
    (AccessPolicy(auth="none", bind="0.0.0.0"), "allowed only on a loopback address"),
    (AccessPolicy(auth="none", trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),)), "trusted_proxies needs a login"),
    (AccessPolicy(auth="password", bind="0.0.0.0"), "needs the names users reach the dashboard by"),
    (AccessPolicy(auth="sso"), "auth must be one of none, password, oidc"),
])
def test_policies_that_may_not_be_served(policy, problem):
    assert problem in policy.problem()


def test_policy_round_trips_through_the_served_arguments():
    assert policy_from_args(["--config", "x.toml", *policy_args(BEHIND)]) == BEHIND
    assert policy_from_args(["--config", "x.toml"]) is None


def test_lockout_doubles_from_the_limit_and_is_capped():
    limits = LoginLimits(per_user=3, base=timedelta(seconds=60), cap=timedelta(seconds=300))
    t = [NOW - timedelta(seconds=s) for s in (30, 20, 10)]
    assert login_lock(t[:2], limit=3, now=NOW, limits=limits) is None
    assert login_lock(t, limit=3, now=NOW, limits=limits) == t[-1] + timedelta(seconds=60)
    four = [*t, NOW - timedelta(seconds=5)]
    assert login_lock(four, limit=3, now=NOW, limits=limits) == four[-1] + timedelta(seconds=120)
    many = [NOW - timedelta(seconds=1)] * 10
    assert login_lock(many, limit=3, now=NOW, limits=limits) == NOW - timedelta(seconds=1) + timedelta(seconds=300)
    # a lockout that has ended lets the next attempt through; failures outside the window do not count
    assert login_lock(t, limit=3, now=NOW + timedelta(seconds=61), limits=limits) is None
    assert login_lock([NOW - timedelta(days=2)] * 5, limit=3, now=NOW, limits=limits) is None


@pytest.mark.parametrize(("password", "ok"), [
    ("a", False), ("short pass", False), ("aaaaaaaaaaaaaaaa", False), ("abababababab", False), ("Password1234", False),
    ("correct horse battery staple", True), ("7#kQ!xz2Lp9w", True),
])
def test_password_strength(password, ok):
    assert (password_problem(password) is None) is ok

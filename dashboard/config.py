"""The ``[dashboard]`` section of the config file, and the arguments the app is started with.

    [dashboard]
    refresh_seconds = 60       # auto-refresh interval when switched on
    default_range = "7d"       # 24h, 7d, 30d, 90d, 180d or 365d
    title = "pipepulse"
    auth = "password"          # none | password | oidc (default: the login the secrets file
                               # configures, else none, which only a loopback address may serve)
    allowed_hosts = ["dash.example.com"]   # names users reach it by (localhost, 127.0.0.1, [::1] always)
    trusted_proxies = ["10.0.0.0/16"]      # proxies whose X-Forwarded-For names the client

``pipepulse dashboard serve`` turns the last three (``pipepulse.access.access_config``, plus its
``--auth``, ``--allowed-host`` and ``--trusted-proxy``) into one ``pipepulse.access.AccessPolicy``
and passes it to the served process after ``--``, where ``served_policy`` reads it back for the
request guard and the login.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from pipepulse.access import AccessPolicy, access_config, policy_from_args
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt

__all__ = ["RANGES", "DashboardConfig", "app_arguments", "dashboard_config", "served_policy"]

RANGES = ("24h", "7d", "30d", "90d", "180d", "365d")


@dataclass(frozen=True, kw_only=True)
class DashboardConfig:
    refresh_seconds: int = 60
    default_range: str = "7d"
    title: str = "pipepulse"
    auth: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()


def dashboard_config(settings: Settings) -> DashboardConfig:
    """Parse ``[dashboard]``; errors name the file, the key and the expectation."""
    table = settings.section("dashboard")
    label = settings.config_label
    check_keys(table, "dashboard", label)
    refresh = opt(table, "refresh_seconds", int, label, "dashboard", default=60)
    if refresh < 5:
        raise ConfigError(f"{label}: [dashboard] refresh_seconds: expected at least 5 seconds, got {refresh}")
    default_range = opt(table, "default_range", str, label, "dashboard", default="7d")
    if default_range not in RANGES:
        raise ConfigError(f"{label}: [dashboard] default_range: expected one of {', '.join(RANGES)}, got {default_range!r}")
    access = access_config(table, label)
    return DashboardConfig(
        refresh_seconds=refresh,
        default_range=default_range,
        title=opt(table, "title", str, label, "dashboard", default="pipepulse"),
        auth=access.auth,
        allowed_hosts=access.allowed_hosts,
        trusted_proxies=access.trusted_proxies,
    )


def app_arguments(argv: list[str]) -> argparse.Namespace:
    """The arguments ``pipepulse dashboard serve`` passes to the app after ``--``: ``--config
    FILE`` (and the access policy, which ``served_policy`` reads)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config")
    ns, _ = p.parse_known_args(argv)
    if ns.config and not os.path.isfile(ns.config):
        raise ConfigError(f"config file {ns.config} does not exist")
    return ns


def served_policy(argv: list[str]) -> AccessPolicy | None:
    """The access policy ``pipepulse dashboard serve`` passed after ``--``; None when the app was
    started another way (Streamlit's AppTest, a bare ``streamlit run``)."""
    return policy_from_args(argv)

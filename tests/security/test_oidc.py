"""OpenID Connect sign-in, through the real app (Streamlit's AppTest, which hands the app the
ID token's claims as ``st.user``). Findings of issue #19 replayed here: any account at the
identity provider became a viewer; a ``name`` claim equal to an admin's email (with no email
claim) gave admin; ``email_verified = false`` was ignored. Now: only verified emails from the
configured domains get in, and roles come from configured emails or a group claim.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from pipepulse.access import oidc_user
from pipepulse.errors import ConfigError

APP = __import__("pathlib").Path(__file__).resolve().parents[2] / "dashboard" / "app.py"

AUTH = {"redirect_uri": "https://pp.example.com/oauth2callback", "cookie_secret": "x" * 32, "client_id": "c",
        "client_secret": "s", "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration"}
SECRETS = {
    "auth": AUTH,
    "pipepulse": {"allowed_domains": ["example.com"], "admins": ["ann@example.com"], "admin_groups": ["pp-admins"]},
}


@pytest.fixture
def oidc_app(sec_db, app_env_sec):
    url, _ = sec_db
    app_env_sec(url)

    def open_as(claims: dict) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.secrets = SECRETS
        at.user = {"is_logged_in": True, **claims}
        at.run()
        return at

    return open_as


@pytest.fixture
def app_env_sec(monkeypatch):
    import sys

    import streamlit as st
    from streamlit import config

    before = config.get_option("server.address")

    def use(url: str) -> None:
        monkeypatch.setenv("PIPEPULSE_DATABASE_URL", url)
        monkeypatch.setenv("PIPEPULSE_CONFIG", str(APP.parents[1] / "examples" / "demo.toml"))
        monkeypatch.setattr(sys, "argv", [str(APP)])
        st.cache_data.clear()
        st.cache_resource.clear()
        config.set_option("server.address", "0.0.0.0")

    yield use
    st.cache_data.clear()
    st.cache_resource.clear()
    config.set_option("server.address", before)


def _signed_in(at: AppTest) -> str | None:
    for c in at.sidebar.caption:
        if c.value.startswith("Signed in as "):
            return c.value.replace("\\", "")  # the name is shown Markdown-escaped
    return None


def _errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


@pytest.mark.parametrize(("claims", "refusal"), [
    ({"email": "bob@example.com", "email_verified": False}, "has not been verified"),
    ({"email": "bob@example.com"}, "has not been verified"),
    ({"name": "ann@example.com"}, "gave no email"),
    ({"email": "mallory@evil.example", "email_verified": True}, "evil.example is not one of this dashboard's domains"),
    ({"email": "ann@example.com.evil.example", "email_verified": True}, "is not one of this dashboard's domains"),
])
def test_oidc_refuses_unverified_missing_and_foreign_emails(oidc_app, claims, refusal):
    at = oidc_app(claims)
    assert not at.exception
    assert _signed_in(at) is None
    assert refusal in _errors(at)
    assert not [b for b in at.button if b.key == "ack"]


@pytest.mark.parametrize(("claims", "role"), [
    ({"email": "ann@example.com", "email_verified": True, "name": "Ann"}, "admin"),
    ({"email": "Ann@Example.COM", "email_verified": "true"}, "admin"),
    ({"email": "bob@example.com", "email_verified": True, "groups": ["pp-admins"]}, "admin"),
    ({"email": "bob@example.com", "email_verified": True, "name": "ann@example.com"}, "viewer"),
    ({"email": "bob@example.com", "email_verified": True, "groups": "pp-admins-not"}, "viewer"),
])
def test_oidc_roles_come_from_emails_or_groups_never_from_the_name(oidc_app, claims, role):
    at = oidc_app(claims)
    assert not at.exception
    assert _signed_in(at) == f"Signed in as {claims['email'].lower()} ({role})"


def test_oidc_rules_are_required_and_checked():
    with pytest.raises(ConfigError, match="allowed_domains"):
        oidc_user({"email": "a@example.com", "email_verified": True}, {"pipepulse": {"admins": ["a@example.com"]}})
    user = oidc_user({"email": "a@example.com", "email_verified": True, "roles": ["ops"]},
                     {"pipepulse": {"allowed_domains": ["example.com"], "groups_claim": "roles", "admin_groups": ["ops"]}})
    assert (user.name, user.role) == ("a@example.com", "admin")

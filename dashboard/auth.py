"""The login wall: none on a loopback address, required on any other.

Who may do what: ``viewer`` reads everything; ``admin`` also acknowledges, snoozes and resolves
anomalies. On a loopback address the local user is an admin. Elsewhere the user signs in with
a password checked against ``[pipepulse.users.<name>]`` in Streamlit secrets (scrypt hashes made
by ``pipepulse dashboard hash-password``), or with OpenID Connect when ``[auth]`` is configured
(admins listed in ``[pipepulse] admins``). With neither configured the app shows nothing
(``pipepulse dashboard serve`` already refuses to start that way).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from dashboard.ui import esc
from pipepulse.commands.dashboard import auth_mode, is_loopback, password_users, verify_password
from pipepulse.errors import ConfigError

__all__ = ["User", "current_user", "require_user", "sign_out_button"]

FAILED_LOGIN_DELAY = 1.0  # seconds, slows password guessing


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _secrets() -> dict:
    try:
        return st.secrets.to_dict()
    except (FileNotFoundError, OSError):
        return {}
    except Exception:  # a malformed secrets file: Streamlit raises its own parse errors
        st.error("The Streamlit secrets file cannot be read; fix it and restart the dashboard.")
        st.stop()
        raise


def current_user() -> User:
    """The user ``app.py`` signed in for this run (pages call this)."""
    user = st.session_state.get("_pp_current")
    if not isinstance(user, User):
        st.error("Open the dashboard through its main page.")
        st.stop()
    return user


def require_user() -> User:
    """The signed-in user; draws the login form and stops the script when there is none."""
    user = _require_user()
    st.session_state["_pp_current"] = user
    return user


def _require_user() -> User:
    address = st.get_option("server.address")
    if is_loopback(address):
        return User(name="local", role="admin")
    secrets = _secrets()
    try:
        mode = auth_mode(secrets)
    except ConfigError as exc:
        st.error(str(exc))
        st.stop()
    if mode == "oidc":
        return _oidc(secrets)
    if mode == "password":
        return _password(password_users(secrets))
    st.error(
        "This dashboard is served on a non-local address without a login configured, so it shows "
        "nothing. Add users to the Streamlit secrets file (see `pipepulse dashboard hash-password`)."
    )
    st.stop()
    raise AssertionError("unreachable")


def _oidc(secrets: dict) -> User:
    if not st.user.is_logged_in:
        st.title("pipepulse")
        st.write("Sign in to see the dashboard.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    email = str(st.user.get("email") or st.user.get("name") or "user")
    admins = {str(a).lower() for a in (secrets.get("pipepulse", {}) or {}).get("admins", [])}
    return User(name=email, role="admin" if email.lower() in admins else "viewer")


def _password(users: dict[str, dict[str, str]]) -> User:
    found = st.session_state.get("_pp_user")
    if isinstance(found, User):
        return found
    st.title("pipepulse")
    st.caption("Sign in to see the dashboard.")
    with st.form("login"):
        name = st.text_input("User name", key="_pp_login_name")
        password = st.text_input("Password", type="password", key="_pp_login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        entry = users.get(name)
        # verify against a real hash even for unknown names, so timing does not reveal them
        stored = entry["password_hash"] if entry else next(iter(users.values()))["password_hash"]
        ok = verify_password(password, stored) and entry is not None
        if ok:
            user = User(name=name, role=entry["role"])
            st.session_state["_pp_user"] = user
            st.rerun()
        time.sleep(FAILED_LOGIN_DELAY)
        st.error("Wrong user name or password.")
    st.stop()
    raise AssertionError("unreachable")


def sign_out_button(user: User) -> None:
    """Sidebar line with the user and a sign-out button (not shown for the local user)."""
    if user.name == "local":
        return
    st.sidebar.caption(f"Signed in as {esc(user.name)} ({user.role})")
    if st.sidebar.button("Sign out", key="_pp_sign_out"):
        st.session_state.pop("_pp_user", None)
        if st.user.is_logged_in:
            st.logout()
        st.rerun()

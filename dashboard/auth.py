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
from pipepulse.access import auth_mode, is_loopback, password_users, verify_password
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


def require_user(url_paths: list[str]) -> User:
    """The signed-in user. Without one, every page URL (``url_paths``, the first the default)
    shows the sign-in form, so a deep link still opens its page after signing in; and
    ``st.navigation`` is always called before anything is drawn."""
    user = _signed_in()
    if user is None:
        pages = [
            st.Page(_login_view, title=f"Sign in ({path})", url_path=path, default=i == 0)
            for i, path in enumerate(url_paths)
        ]
        st.navigation(pages, position="hidden").run()
        st.stop()
    st.session_state["_pp_current"] = user
    return user


def _mode_and_secrets() -> tuple[str | None, dict]:
    secrets = _secrets()
    try:
        return auth_mode(secrets), secrets
    except ConfigError as exc:
        st.error(str(exc))
        st.stop()
        raise


def _signed_in() -> User | None:
    if is_loopback(st.get_option("server.address")):
        return User(name="local", role="admin")
    mode, secrets = _mode_and_secrets()
    if mode == "oidc":
        if not st.user.is_logged_in:
            return None
        email = str(st.user.get("email") or st.user.get("name") or "user")
        admins = {str(a).lower() for a in (secrets.get("pipepulse", {}) or {}).get("admins", [])}
        return User(name=email, role="admin" if email.lower() in admins else "viewer")
    found = st.session_state.get("_pp_user")
    return found if mode == "password" and isinstance(found, User) else None


def _login_view() -> None:
    mode, secrets = _mode_and_secrets()
    st.title("pipepulse")
    if mode is None:
        st.error(
            "This dashboard is served on a non-local address without a login configured, so it shows "
            "nothing. Add users to the Streamlit secrets file (see `pipepulse dashboard hash-password`)."
        )
        return
    st.caption("Sign in to see the dashboard.")
    if mode == "oidc":
        st.button("Sign in", on_click=st.login, type="primary")
        return
    users = password_users(secrets)
    with st.form("login"):
        name = st.text_input("User name", key="_pp_login_name")
        password = st.text_input("Password", type="password", key="_pp_login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        entry = users.get(name)
        # verify against a real hash even for unknown names, so timing does not reveal them
        stored = entry["password_hash"] if entry else next(iter(users.values()))["password_hash"]
        if verify_password(password, stored) and entry is not None:
            st.session_state["_pp_user"] = User(name=name, role=entry["role"])
            st.rerun()
        time.sleep(FAILED_LOGIN_DELAY)
        st.error("Wrong user name or password.")


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

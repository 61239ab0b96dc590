"""The login wall, by the access policy (``pipepulse.access``; ``pipepulse dashboard serve``
hands it to the app after ``--``):

- ``none``: the local user, an admin; only for requests the request guard let through as local,
  and checked here once more against the websocket's own ``Host``/``Origin``/proxy headers (a
  bare ``streamlit run`` has no guard in front).
- ``password``: a form checked against ``[pipepulse.users.<name>]`` (scrypt). Before a password is
  checked, failed sign-ins for the name and from the client are counted from the audit log
  (``pipepulse.access.login_lock``): past the limit, nothing is checked until the lockout ends.
  Every attempt, its outcome and every sign-out are audited (who, client, when).
- ``oidc``: Streamlit's ``st.login``; ``pipepulse.access.oidc_user`` admits verified emails of
  the configured domains and gives the role.

Who may do what: ``viewer`` reads everything; ``admin`` also acknowledges, snoozes and resolves
anomalies (``require_admin`` before any such write). With no login configured on a non-loopback
address the app shows nothing (``serve`` already refuses to start that way).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import streamlit as st

from dashboard import data
from dashboard.config import served_policy
from dashboard.ui import esc
from pipepulse.access import (
    LOGIN_LIMITS,
    AccessPolicy,
    auth_mode,
    check_request,
    is_loopback,
    login_lock,
    oidc_user,
    password_users,
    verify_password,
)
from pipepulse.errors import AccessError, ConfigError

__all__ = ["User", "client_address", "current_user", "require_admin", "require_user", "sign_out_button"]

FAILED_LOGIN_DELAY = 1.0  # seconds, slows password guessing within the limit
# one sign-in at a time per server process decides "locked or not" and records its attempt, so
# parallel sessions cannot all slip under the limit before any of them is counted
_LOGIN_LOCK = threading.Lock()


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


def require_admin(user: User) -> None:
    """Stop the run unless ``user`` is an admin (before any admin write)."""
    if not user.is_admin:
        st.error("Only admins can do this.")
        st.stop()


def client_address() -> str:
    """The client's address as the server saw it (behind a trusted proxy: the one it names)."""
    ip = st.context.ip_address  # None on 127.0.0.1/::1 (and not a str under AppTest)
    return ip if isinstance(ip, str) and ip else "local"


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


def _policy(secrets: dict) -> AccessPolicy | None:
    """The served policy, or (AppTest, a bare ``streamlit run``) one derived from the bind address
    and the secrets; None when a non-loopback address has no login configured."""
    served = served_policy(sys.argv[1:])
    if served is not None:
        return served
    try:
        mode = auth_mode(secrets)
    except ConfigError as exc:
        st.error(str(exc))
        st.stop()
        raise
    address = st.get_option("server.address")
    if mode is None:
        return AccessPolicy(auth="none", bind=address) if is_loopback(address) else None
    return AccessPolicy(auth=mode, bind=address)


def _local_request_problem(policy: AccessPolicy) -> str | None:
    """Why this session's websocket does not look local (for ``auth = none``), or None."""
    try:
        headers = {str(k).lower(): str(v) for k, v in st.context.headers.items()}
    except (AttributeError, TypeError):
        headers = {}
    if not headers:  # no handshake to check (AppTest)
        return None
    decision = check_request(policy, peer=None, host=headers.get("host"), origin=headers.get("origin"), headers=headers)
    return decision.reason if decision.status else None


def _signed_in() -> User | None:
    secrets = _secrets()
    policy = _policy(secrets)
    if policy is None:
        return None
    if policy.auth == "none":
        problem = _local_request_problem(policy)
        if problem:
            st.error(f"This dashboard has no login and answers local requests only: {problem}.")
            st.stop()
        return User(name="local", role="admin")
    if policy.auth == "oidc":
        if not st.user.is_logged_in:
            return None
        return _oidc_user(secrets)
    found = st.session_state.get("_pp_user")
    return found if isinstance(found, User) else None


def _oidc_user(secrets: dict) -> User | None:
    claims = st.user.to_dict()
    try:
        identity = oidc_user(claims, secrets)
    except (AccessError, ConfigError) as exc:
        if not st.session_state.get("_pp_oidc_refused"):
            st.session_state["_pp_oidc_refused"] = True
            _audit_quietly("login", outcome="refused", actor=str(claims.get("email") or claims.get("sub") or ""),
                           detail=f"oidc: {exc}")
        st.error(str(exc))
        st.button("Sign out", on_click=st.logout)
        st.stop()
        raise
    user = User(name=identity.name, role=identity.role)
    if st.session_state.get("_pp_oidc_audited") != user:
        st.session_state["_pp_oidc_audited"] = user
        _audit_quietly("login", outcome="ok", actor=user.name, detail=f"oidc, role {user.role}")
    return user


def _audit_quietly(action: str, **kw) -> None:
    # the sign-in page must say why someone was refused even when the audit cannot be written
    try:
        data.audit(action, client=client_address(), **kw)
    except Exception:  # noqa: BLE001 - reported by the audit's own logging; the page goes on
        import logging

        logging.getLogger(__name__).exception("audit write failed", extra={"action": action})


def _login_view() -> None:
    secrets = _secrets()
    policy = _policy(secrets)
    st.title("pipepulse")
    if policy is None:
        st.error(
            "This dashboard is served on a non-local address without a login configured, so it shows "
            "nothing. Add users to the Streamlit secrets file (see `pipepulse dashboard hash-password`)."
        )
        return
    st.caption("Sign in to see the dashboard.")
    if policy.auth == "oidc":
        st.button("Sign in", on_click=st.login, type="primary")
        return
    try:
        users = password_users(secrets)
    except ConfigError as exc:
        st.error(str(exc))
        return
    if not users:
        st.error("No users are configured: add [pipepulse.users.<name>] to the Streamlit secrets file.")
        return
    with st.form("login"):
        name = st.text_input("User name", key="_pp_login_name")
        password = st.text_input("Password", type="password", key="_pp_login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        user, message = _attempt(name, password, users)
        if user is not None:
            st.session_state["_pp_user"] = user
            st.rerun()
        st.error(message)


def _attempt(name: str, password: str, users: dict[str, dict[str, str]]) -> tuple[User | None, str]:
    """One sign-in: refused unchecked while locked out, else checked; audited either way."""
    client = client_address()
    now = datetime.now(UTC)
    with _LOGIN_LOCK:
        by_user, by_client = data.login_failures(name, client, now - LOGIN_LIMITS.window)
        locks = [login_lock(by_user, limit=LOGIN_LIMITS.per_user, now=now),
                 login_lock(by_client, limit=LOGIN_LIMITS.per_client, now=now)]
        until = max((t for t in locks if t is not None), default=None)
        if until is not None:
            data.audit("login", outcome="locked", actor=name, client=client, detail=f"locked until {until:%Y-%m-%d %H:%M:%S}Z")
            return None, (f"Too many failed sign-ins for this user name or from this address; "
                          f"try again after {until:%H:%M:%S} UTC.")
        attempt = data.audit("login", outcome="pending", actor=name, client=client, detail="password")
    entry = users.get(name)
    # verify against a real hash even for unknown names, so timing does not reveal them
    stored = entry["password_hash"] if entry else next(iter(users.values()))["password_hash"]
    if verify_password(password, stored) and entry is not None:
        data.finish_audit(attempt, "ok", f"password, role {entry['role']}")
        return User(name=name, role=entry["role"]), ""
    data.finish_audit(attempt, "failed", "unknown user name" if entry is None else "wrong password")
    time.sleep(FAILED_LOGIN_DELAY)
    return None, "Wrong user name or password."


def sign_out_button(user: User) -> None:
    """Sidebar line with the user and a sign-out button (not shown for the local user)."""
    if user.name == "local":
        return
    st.sidebar.caption(f"Signed in as {esc(user.name)} ({user.role})")
    if st.sidebar.button("Sign out", key="_pp_sign_out"):
        _audit_quietly("logout", outcome="ok", actor=user.name)
        st.session_state.pop("_pp_user", None)
        st.session_state.pop("_pp_oidc_audited", None)
        if st.user.is_logged_in:
            st.logout()
        st.rerun()

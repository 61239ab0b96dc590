"""Who may see the dashboard: the login rules that ``pipepulse dashboard serve`` enforces before
it starts and the app (``dashboard/auth.py``) enforces on every page, defined once so the two
cannot disagree.

Bound to a loopback address the dashboard has no login. Bound to any other address it needs one,
in the Streamlit secrets file: ``[pipepulse.users.<name>]`` tables with ``password_hash`` (from
``pipepulse dashboard hash-password``: scrypt) and ``role = "viewer" | "admin"``, or Streamlit's
OpenID Connect ``[auth]`` section with ``[pipepulse] admins = ["email", ...]``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets as _secrets
from collections.abc import Mapping
from typing import Any

from pipepulse.errors import ConfigError, InputError

__all__ = [
    "ROLES",
    "auth_mode",
    "hash_password",
    "is_loopback",
    "oidc_configured",
    "password_users",
    "verify_password",
]

ROLES = ("viewer", "admin")
# scrypt cost: 2**14 x 8 takes ~50 ms and 16 MB, the usual interactive-login setting.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) for ``password``, for the secrets file."""
    if not password:
        raise InputError("the password is empty")
    salt = salt or _secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (a ``hash_password`` string); constant-time."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; an empty address means every interface."""
    if not address:
        return False
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def password_users(secrets: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``{name: {password_hash, role}}`` from ``[pipepulse.users.*]``; raises ConfigError on a bad entry."""
    section = secrets.get("pipepulse", {}) or {}
    users = section.get("users", {}) or {}
    out: dict[str, dict[str, str]] = {}
    for name, entry in users.items():
        if not isinstance(entry, Mapping) or not str(entry.get("password_hash", "")).startswith("scrypt$"):
            raise ConfigError(
                f"secrets [pipepulse.users.{name}]: password_hash must be a hash from "
                "`pipepulse dashboard hash-password`"
            )
        role = entry.get("role", "viewer")
        if role not in ROLES:
            raise ConfigError(f"secrets [pipepulse.users.{name}] role: expected viewer or admin, got {role!r}")
        out[str(name)] = {"password_hash": str(entry["password_hash"]), "role": role}
    return out


def oidc_configured(secrets: Mapping[str, Any]) -> bool:
    """True when Streamlit's ``[auth]`` section names a redirect URI and a cookie secret."""
    auth = secrets.get("auth")
    if not isinstance(auth, Mapping):
        return False
    return bool(auth.get("redirect_uri") and auth.get("cookie_secret"))


def auth_mode(secrets: Mapping[str, Any]) -> str | None:
    """``"oidc"``, ``"password"`` or None (no login configured)."""
    if oidc_configured(secrets):
        return "oidc"
    if password_users(secrets):
        return "password"
    return None

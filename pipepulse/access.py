"""Who may reach the dashboard and what they may do: the rules that ``pipepulse dashboard serve``
checks before it starts, that its request guard (``dashboard/guard.py``) applies to every HTTP
request and websocket upgrade before Streamlit sees it, and that the app's login
(``dashboard/auth.py``) applies to every session, defined once so they cannot disagree.

**Auth modes** (``AccessPolicy.auth``; ``[dashboard] auth`` or ``serve --auth``):

- ``none``: no login, every visitor is the local admin. Allowed only when the server is bound to
  a loopback address, and then only for requests that are plainly local: a ``Host`` (and, when
  the browser sends one, an ``Origin``) in the allowed-hosts list, and no proxy headers. A DNS
  rebinding page (its own name pointing at 127.0.0.1) and a reverse proxy or tunnel that
  publishes the port are refused before the app runs.
- ``password``: ``[pipepulse.users.<name>]`` in the Streamlit secrets file, scrypt hashes from
  ``pipepulse dashboard hash-password`` (``password_problem`` sets the minimum strength),
  ``role = "viewer" | "admin"``. Failed sign-ins are limited per user name and per client, with
  a lockout that doubles (``LOGIN_LIMITS``, ``login_lock``).
- ``oidc``: Streamlit's ``[auth]`` section; ``oidc_user`` admits only a verified email at one of
  ``[pipepulse] allowed_domains``, admin when the email is in ``admins`` or a group claim names
  one of ``admin_groups``; the ``name`` claim never decides anything.

**Allowed hosts**: ``localhost``, ``127.0.0.1`` and ``[::1]`` plus the names configured
(``[dashboard] allowed_hosts``, ``serve --allowed-host``): the names users type. Every other
``Host`` is refused (``/_stcore/health`` excepted: load balancers probe it by IP).

**Trusted proxies** (``[dashboard] trusted_proxies``, ``serve --trusted-proxy``; addresses or
networks): a request carrying ``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP`` or
``X-Forwarded-Host`` is accepted only from one of them and only with a login; the client is then
the nearest address in ``X-Forwarded-For`` that is not itself a trusted proxy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipepulse.errors import AccessError, ConfigError, InputError

__all__ = [
    "AUTH_MODES",
    "LOGIN_LIMITS",
    "LOOPBACK_HOSTS",
    "PROXY_HEADERS",
    "ROLES",
    "AccessConfig",
    "AccessPolicy",
    "Decision",
    "Identity",
    "LoginLimits",
    "access_config",
    "auth_mode",
    "check_request",
    "hash_password",
    "host_name",
    "is_loopback",
    "is_trusted_proxy",
    "login_lock",
    "oidc_configured",
    "oidc_user",
    "password_problem",
    "password_users",
    "policy_args",
    "policy_from_args",
    "verify_password",
]

ROLES = ("viewer", "admin")
AUTH_MODES = ("none", "password", "oidc")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host")
HEALTH_PATH = "/_stcore/health"
# scrypt cost: 2**14 x 8 takes ~50 ms and 16 MB, the usual interactive-login setting.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 6
# the most common passwords of at least 12 characters in public breach lists (a password this
# short list rejects is the kind of password guessers try first)
COMMON_PASSWORDS = frozenset({
    "password1234", "password12345", "password123456", "123456789012", "1234567890123", "qwertyuiop12",
    "qwertyuiopas", "1q2w3e4r5t6y", "iloveyou1234", "adminadmin12", "administrator", "welcome12345",
    "changeme1234", "letmein12345", "passw0rd1234", "p@ssw0rd1234", "qwerty123456", "abcdefghijkl",
    "abc123456789", "111111111111", "000000000000", "123123123123", "monkey123456", "dragon123456",
    "football1234", "baseball1234", "superman1234", "trustno11234", "sunshine1234", "princess1234",
    "pipepulse123", "pipepulse1234", "pipepulseadmin",
})


# ---- passwords -----------------------------------------------------------------------------------


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


def password_problem(password: str) -> str | None:
    """Why ``password`` is too weak for a dashboard login, or None. The rule: at least 12
    characters, at least 6 different ones, not one of the commonest passwords (a pass phrase of
    a few words passes easily)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters (it has {len(password)}); a few words make a good one"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return f"the password needs more different characters (at least {MIN_DISTINCT_CHARACTERS})"
    if password.lower() in COMMON_PASSWORDS:
        return "the password is too common: it is among the first any guesser tries"
    return None


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


# ---- login attempts --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LoginLimits:
    """Failed sign-ins allowed before a lockout, per user name and per client address, and how
    long the lockout lasts: ``base`` after the limit is reached, doubling with each failure
    after it (each one possible only once the previous lockout ended), at most ``cap``.
    Failures count since the last successful sign-in, within ``window``."""

    per_user: int = 5
    per_client: int = 20
    base: timedelta = timedelta(seconds=60)
    cap: timedelta = timedelta(hours=1)
    window: timedelta = timedelta(hours=24)


LOGIN_LIMITS = LoginLimits()


def login_lock(failures: Sequence[datetime], *, limit: int, now: datetime, limits: LoginLimits = LOGIN_LIMITS) -> datetime | None:
    """The end of the lockout that ``failures`` (times of failed or unfinished sign-ins since the
    last success, oldest first) impose at ``now``, or None when a sign-in may be tried."""
    recent = [t for t in failures if t > now - limits.window]
    if len(recent) < limit:
        return None
    doublings = min(len(recent) - limit, 30)
    until = recent[-1] + min(limits.base * (2**doublings), limits.cap)
    return until if until > now else None


# ---- OpenID Connect -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who signed in: a name to show and record, and a role."""

    name: str
    role: str


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def oidc_rules(secrets: Mapping[str, Any]) -> dict[str, Any]:
    """``[pipepulse]``'s OIDC rules, checked: ``allowed_domains`` (required), ``admins``,
    ``admin_groups``, ``viewer_groups`` (when set, a viewer must be in one), ``groups_claim``."""
    section = secrets.get("pipepulse", {}) or {}
    domains = [d.strip().lower().lstrip("@") for d in _strings(section.get("allowed_domains")) if d.strip()]
    if not domains:
        raise ConfigError(
            "secrets [pipepulse] allowed_domains: OpenID Connect admits only verified emails of the "
            'domains listed there, e.g. allowed_domains = ["example.com"]; none is set, so nobody could sign in'
        )
    claim = section.get("groups_claim", "groups")
    if not isinstance(claim, str) or not claim:
        raise ConfigError(f"secrets [pipepulse] groups_claim: expected the name of a claim, got {claim!r}")
    return {
        "domains": set(domains),
        "admins": {a.strip().lower() for a in _strings(section.get("admins"))},
        "admin_groups": set(_strings(section.get("admin_groups"))),
        "viewer_groups": set(_strings(section.get("viewer_groups"))),
        "groups_claim": claim,
    }


def oidc_user(claims: Mapping[str, Any], secrets: Mapping[str, Any]) -> Identity:
    """The identity for an ID token's ``claims``; AccessError (a sentence for the sign-in page)
    when the rules refuse it, ConfigError when the rules are missing."""
    rules = oidc_rules(secrets)
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise AccessError("Your identity provider gave no email address, so this dashboard cannot tell who you are.")
    email = email.strip().lower()
    if not _true(claims.get("email_verified")):
        raise AccessError(f"The email address {email} has not been verified by your identity provider.")
    domain = email.rsplit("@", 1)[1]
    if domain not in rules["domains"]:
        raise AccessError(f"{domain} is not one of this dashboard's domains; ask an admin to add you.")
    groups = set(_strings(claims.get(rules["groups_claim"])))
    if email in rules["admins"] or groups & rules["admin_groups"]:
        return Identity(email, "admin")
    if rules["viewer_groups"] and not groups & rules["viewer_groups"]:
        raise AccessError(f"{email} is in none of the groups allowed to see this dashboard.")
    return Identity(email, "viewer")


def oidc_configured(secrets: Mapping[str, Any]) -> bool:
    """True when Streamlit's ``[auth]`` section names a redirect URI and a cookie secret."""
    auth = secrets.get("auth")
    if not isinstance(auth, Mapping):
        return False
    return bool(auth.get("redirect_uri") and auth.get("cookie_secret"))


def auth_mode(secrets: Mapping[str, Any]) -> str | None:
    """The login the secrets configure: ``"oidc"``, ``"password"`` or None."""
    if oidc_configured(secrets):
        return "oidc"
    if password_users(secrets):
        return "password"
    return None


# ---- the trust boundary ----------------------------------------------------------------------------


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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str], where: str) -> tuple[Network, ...]:
    """Addresses or CIDR networks; ConfigError naming ``where`` for one that is neither."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{where}: {v!r} is not an IP address or network (e.g. 10.0.0.0/16)") from None
    return tuple(out)


def normalise_host(name: str, where: str) -> str:
    """A configured host name as ``host_name`` reports it (lower case, IPv6 in brackets)."""
    text = str(name).strip().lower().rstrip(".")
    try:
        return f"[{ipaddress.IPv6Address(text.strip('[]'))}]"
    except ValueError:
        pass
    if not text or any(c in text for c in "/@?#*:\\ "):
        raise ConfigError(f"{where}: {name!r} is not a host name (give names such as dash.example.com, without scheme or port)")
    return text


@dataclass(frozen=True, kw_only=True)
class AccessPolicy:
    """How the served dashboard admits requests (see the module docstring)."""

    auth: str
    bind: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()  # configured names, besides LOOPBACK_HOSTS
    trusted_proxies: tuple[Network, ...] = ()

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset((*LOOPBACK_HOSTS, *self.allowed_hosts))

    def problem(self) -> str | None:
        """Why this policy may not be served, or None."""
        if self.auth not in AUTH_MODES:
            return f"auth must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}"
        if self.auth == "none":
            if not is_loopback(self.bind):
                return (f"auth = \"none\" (no login) is allowed only on a loopback address, not {self.bind or 'every interface'}: "
                        "configure a login (users or OpenID Connect in the Streamlit secrets file), or bind to 127.0.0.1")
            if self.trusted_proxies:
                return ("trusted_proxies needs a login: a dashboard without one must not be published through a proxy "
                        "(set auth = \"password\" or \"oidc\")")
        elif not is_loopback(self.bind) and not self.allowed_hosts:
            return (f"serving on {self.bind or 'every interface'} needs the names users reach the dashboard by: set "
                    "[dashboard] allowed_hosts (or --allowed-host dash.example.com); requests for any other name are refused")
        return None


def host_name(header: str | None) -> str | None:
    """The host of a ``Host`` header or an origin's host part (``name[:port]``, ``[v6][:port]``),
    lower case, without a trailing dot; None when malformed."""
    if not header:
        return None
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        name, rest = text[: end + 1], text[end + 2 :]
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return None
        name = f"[{ipaddress.IPv6Address(name[1:-1])}]"
    else:
        name, _, rest = text.partition(":")
        name = name.rstrip(".")
        if not name or any(c in name for c in "/@?#\\ ") or ":" in rest:
            return None
    if rest and not rest.isdigit():
        return None
    return name


def _origin_host(origin: str) -> str | None:
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or "/" in rest:
        return None
    return host_name(rest)


@dataclass(frozen=True)
class Decision:
    """What the guard does with a request: ``status`` 0 lets it through (as ``client``), 403 or
    400 refuses it with ``reason`` (a sentence for the refused visitor and the log)."""

    status: int
    reason: str = ""
    client: str | None = None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted_proxy(policy: AccessPolicy, address: str | None) -> bool:
    """True when ``address`` is one of ``policy.trusted_proxies``."""
    ip = _ip(address or "")
    return ip is not None and any(ip in net for net in policy.trusted_proxies)


def check_request(
    policy: AccessPolicy,
    *,
    peer: str | None,
    host: str | None,
    origin: str | None,
    headers: Mapping[str, str],
    path: str = "/",
) -> Decision:
    """Admit or refuse one HTTP request or websocket upgrade. ``headers``: lower-case names."""
    name = host_name(host)
    if path != HEALTH_PATH:
        if name is None:
            return Decision(400, "the request's Host header is missing or malformed")
        if name not in policy.hosts:
            return Decision(403, f"{name} is not a name this dashboard answers to (allowed: {', '.join(sorted(policy.hosts))}); "
                                 "add it to [dashboard] allowed_hosts if users reach the dashboard by it")
    if origin is not None and origin != "null":
        o_name = _origin_host(origin)
        if o_name is None or o_name not in policy.hosts:
            return Decision(403, f"requests from pages of {origin} are not accepted")
    elif origin == "null":
        return Decision(403, "requests from opaque origins (sandboxed frames, local files) are not accepted")
    forwarded = [h for h in PROXY_HEADERS if h in headers]
    if not forwarded:
        return Decision(0, client=peer)
    if policy.auth == "none":
        return Decision(403, f"this dashboard has no login, and the request came through a proxy ({forwarded[0]}); "
                             "publish it only with a login (auth = \"password\" or \"oidc\") and the proxy in trusted_proxies")
    if not is_trusted_proxy(policy, peer):
        return Decision(403, f"the request carries {forwarded[0]} but came from {peer}, which is not in [dashboard] trusted_proxies")
    chain = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    if not chain:
        return Decision(0, client=peer)
    for hop in reversed(chain):
        ip = _ip(hop)
        if ip is None:
            return Decision(400, f"X-Forwarded-For holds {hop[:60]!r}, which is not an IP address")
        if not any(ip in net for net in policy.trusted_proxies):
            return Decision(0, client=str(ip))
    first = _ip(chain[0])
    return Decision(0, client=str(first))


# ---- the policy in the config and on the command line ----------------------------------------------


@dataclass(frozen=True)
class AccessConfig:
    """``[dashboard]`` auth, allowed_hosts, trusted_proxies as configured (before ``serve``'s flags)."""

    auth: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()


def access_config(table: Mapping[str, Any], label: str) -> AccessConfig:
    """Parse the access keys of the ``[dashboard]`` table; errors name the file and the key."""
    auth = table.get("auth")
    if auth is not None and auth not in AUTH_MODES:
        raise ConfigError(f"{label}: [dashboard] auth: expected one of {', '.join(AUTH_MODES)}, got {auth!r}")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("allowed_hosts", "trusted_proxies"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{label}: [dashboard] {key}: expected a list of strings, got {value!r}")
        lists[key] = tuple(value)
    hosts = tuple(normalise_host(h, f"{label}: [dashboard] allowed_hosts") for h in lists["allowed_hosts"])
    parse_networks(lists["trusted_proxies"], f"{label}: [dashboard] trusted_proxies")
    return AccessConfig(auth=auth, allowed_hosts=hosts, trusted_proxies=lists["trusted_proxies"])


def policy_args(policy: AccessPolicy) -> list[str]:
    """``policy`` as the arguments ``policy_from_args`` reads (``serve`` passes them after ``--``)."""
    args = ["--auth", policy.auth, "--bind", policy.bind]
    for h in policy.allowed_hosts:
        args += ["--allowed-host", h]
    for net in policy.trusted_proxies:
        args += ["--trusted-proxy", str(net)]
    return args


def policy_from_args(argv: Sequence[str]) -> AccessPolicy | None:
    """The policy in ``argv`` (``policy_args``' form; other arguments ignored); None without ``--auth``."""
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--auth", choices=AUTH_MODES)
    p.add_argument("--bind")
    p.add_argument("--allowed-host", action="append", default=[])
    p.add_argument("--trusted-proxy", action="append", default=[])
    ns, _ = p.parse_known_args(list(argv))
    if ns.auth is None:
        return None
    return AccessPolicy(
        auth=ns.auth,
        bind=ns.bind or "127.0.0.1",
        allowed_hosts=tuple(normalise_host(h, "--allowed-host") for h in ns.allowed_host),
        trusted_proxies=parse_networks(ns.trusted_proxy, "--trusted-proxy"),
    )

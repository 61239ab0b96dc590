"""Is a TCP port free to listen on, and has a server started listening on it: checked before
any slow work (``demo up`` builds for minutes), and before saying "dashboard on ..."."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

__all__ = ["port_problem", "wait_listening"]


def port_problem(address: str, port: int) -> str | None:
    """Why ``port`` on ``address`` cannot be listened on (one line saying what to do), or None."""
    if not 0 < port < 65536:
        return f"port {port} is out of range: pick one from 1024 to 65535 with --port"
    host = "127.0.0.1" if address in ("localhost", "") else address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # the same option servers set, so a port in TIME_WAIT after a restart counts as free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except PermissionError:
            return f"port {port} needs administrator rights on this system: pick one above 1023 with --port"
        except OSError as exc:
            if exc.errno == 98 or "in use" in str(exc).lower():  # EADDRINUSE
                return (f"port {port} on {address} is already in use (another dashboard or demo?): stop it, "
                        f"or pick a free port with --port, e.g. --port {port + 1}")
            return f"cannot listen on {address}:{port} ({exc.strerror}): check --address and --port"
    return None


def wait_listening(address: str, port: int, *, alive: Callable[[], bool], timeout: float = 120.0) -> bool:
    """Wait until something accepts connections on ``address:port``; False if ``alive()`` turns
    False first (the server exited) or ``timeout`` passes."""
    host = "127.0.0.1" if address in ("localhost", "", "0.0.0.0") else ("::1" if address == "::" else address)  # noqa: S104
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False

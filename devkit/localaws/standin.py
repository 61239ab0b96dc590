"""What every stand-in of the local AWS shares: a WSGI middleware that answers some requests
itself and hands the rest to the next app (moto, or the next stand-in), with its state behind one
lock, forgotten by ``reset``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Self

__all__ = ["StandIn"]


class StandIn:
    def __init__(self, next_app: Callable[..., Any]) -> None:
        self.next_app = next_app
        self._lock = threading.Lock()
        self.reset()

    @classmethod
    def middleware(cls, next_app: Callable[..., Any]) -> Self:
        """Wrap ``next_app`` (moto); the signature ``LocalAWS`` expects of a middleware."""
        return cls(next_app)

    def reset(self) -> None:
        """Forget what was loaded or recorded, and the request counts."""
        raise NotImplementedError

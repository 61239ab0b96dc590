"""The local AWS server: moto's WSGI app behind a chain of middlewares on one port."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, make_server

from devkit.localaws.costexplorer import CostExplorerStandIn
from devkit.localaws.faults import FaultInjector
from devkit.localaws.glue import GlueJobRunsStandIn
from devkit.localaws.mwaa import MwaaStandIn
from devkit.localaws.stepfunctions import StepFunctionsHistoryStandIn
from devkit.localaws.sts import StsStandIn

__all__ = ["LocalAWS", "Middleware"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
# A middleware takes the next app and returns an app.
Middleware = Callable[[WSGIApp], WSGIApp]


def _default_middlewares() -> list[Middleware]:
    """Stand-ins applied in order, outermost first. Extend here."""
    return [FaultInjector.middleware, CostExplorerStandIn.middleware, StepFunctionsHistoryStandIn.middleware,
            MwaaStandIn.middleware, GlueJobRunsStandIn.middleware, StsStandIn.middleware]


class LocalAWS:
    """moto + stand-ins on ``127.0.0.1:<port>`` (port 0 picks a free one)."""

    def __init__(self, *, port: int = 0, middlewares: list[Middleware] | None = None) -> None:
        self._port = port
        self._middlewares = _default_middlewares() if middlewares is None else middlewares
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.apps: list[Any] = []  # the middleware instances, outermost first

    def start(self) -> LocalAWS:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        app: WSGIApp = DomainDispatcherApplication(create_backend_app)
        built = []
        for mw in reversed(self._middlewares):
            app = mw(app)
            built.append(app)
        self.apps = list(reversed(built))
        self._server = make_server("127.0.0.1", self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="localaws", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "call start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self, kind: type) -> Any:
        """The middleware instance of ``kind`` (e.g. the fault injector)."""
        for a in self.apps:
            if isinstance(a, kind):
                return a
        raise LookupError(f"no {kind.__name__} middleware on this server")

    def reset(self) -> None:
        """Forget all state (moto's, its configuration, and the stand-ins')."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=30).raise_for_status()
        # moto's reset keeps its configuration: a test that made it run real ASL would leave
        # the next test's state machines validated and executed by moto
        requests.post(
            f"{self.endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": False}},
            timeout=30,
        ).raise_for_status()
        for a in self.apps:
            if hasattr(a, "reset"):
                a.reset()

    def enable_stepfunctions_execution(self) -> None:
        """Make moto run real ASL (must precede creating state machines)."""
        requests.post(
            f"{self.endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=30,
        ).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

"""An Amazon MWAA stand-in: ``InvokeRestApi`` and ``CreateCliToken`` in front of moto.

moto 5.2.5 has no MWAA at all. This WSGI middleware answers the two MWAA operations that reach
an environment's Airflow (REST-JSON, ``POST /restapi/{Name}`` and ``POST /clitoken/{Name}``,
signed for the ``airflow`` service) and passes every other request on to moto.

``InvokeRestApi`` does not invent answers: it forwards the request to the *real* Airflow
registered for the environment (``{airflow_url}/api/{api}{Path}``, with the query parameters
and JSON body given, authenticated with a token the stand-in gets from ``/auth/token`` as
MWAA does with its own credentials) and returns Airflow's answer as ``RestApiResponse`` with
``RestApiStatusCode``. Checked as MWAA checks: ``Name`` must be a registered environment
(``ResourceNotFoundException``, 404), ``Path`` 1 to 64 characters and ``Method`` one of GET,
PUT, POST, PATCH, DELETE (``ValidationException``, 400); an Airflow 4xx answer becomes
``RestApiClientException`` and a 5xx ``RestApiServerException`` (both HTTP 400, carrying
Airflow's status and answer). ``CreateCliToken`` returns a random token and the environment's
web server host name. Limits: no IAM (every signed caller may call), no environment lifecycle
(register environments through the control API), no CLI endpoint behind the token.

Control API on the same port: ``POST /pipepulse-api/mwaa/environments``
``{"name", "airflow_url", "username", "password", "api": "v2"}``, ``GET /pipepulse-api/mwaa/requests``
(requests per operation and the REST paths forwarded), ``POST /pipepulse-api/mwaa/reset``.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devkit.localaws.standin import StandIn

__all__ = ["MwaaStandIn"]

CONTROL_PREFIX = "/pipepulse-api/mwaa/"
METHODS = {"GET", "PUT", "POST", "PATCH", "DELETE"}
PATH_MAX = 64


@dataclass
class Environment:
    name: str
    airflow_url: str
    username: str
    password: str
    api: str = "v2"
    token: str | None = None


class MwaaError(Exception):
    def __init__(self, code: str, status: int, body: dict[str, Any]) -> None:
        super().__init__(code)
        self.code, self.status, self.body = code, status, body


class MwaaStandIn(StandIn):
    """WSGI middleware answering MWAA's InvokeRestApi/CreateCliToken from a real Airflow."""

    def reset(self) -> None:
        with self._lock:
            self.environments: dict[str, Environment] = {}
            self.requests: Counter[str] = Counter()
            self.paths: list[str] = []

    def register(self, name: str, airflow_url: str, *, username: str, password: str, api: str = "v2") -> None:
        """Make ``name`` an environment whose Airflow answers at ``airflow_url``."""
        with self._lock:
            self.environments[name] = Environment(name, airflow_url.rstrip("/"), username, password, api)

    # ---- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):])
        auth = environ.get("HTTP_AUTHORIZATION", "")
        method = environ.get("REQUEST_METHOD", "")
        if method == "POST" and "/airflow/aws4_request" in auth:
            for prefix, handler in (("/restapi/", self.invoke_rest_api), ("/clitoken/", self.create_cli_token)):
                if path.startswith(prefix):
                    name = urllib.parse.unquote(path[len(prefix):])
                    with self._lock:
                        self.requests[handler.__name__] += 1
                    try:
                        return _json(start_response, "200 OK", handler(name, _body(environ)))
                    except MwaaError as err:
                        return _json(start_response, f"{err.status} Error", err.body, error_type=err.code)
        return self.next_app(environ, start_response)

    def _env(self, name: str) -> Environment:
        with self._lock:
            env = self.environments.get(name)
        if env is None:
            raise MwaaError("ResourceNotFoundException", 404, {"message": f"Environment {name} not found."})
        return env

    def create_cli_token(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        env = self._env(name)
        host = urllib.parse.urlsplit(env.airflow_url).netloc
        return {"CliToken": secrets.token_urlsafe(32), "WebServerHostname": host}

    def invoke_rest_api(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        env = self._env(name)
        path, method = body.get("Path"), body.get("Method")
        if not isinstance(path, str) or not 1 <= len(path) <= PATH_MAX:
            raise MwaaError("ValidationException", 400, {"message": f"1 validation error detected: Value at 'path' failed to satisfy constraint: Member must have length less than or equal to {PATH_MAX}"})
        if method not in METHODS:
            raise MwaaError("ValidationException", 400, {"message": f"1 validation error detected: Value '{method}' at 'method' failed to satisfy constraint: Member must satisfy enum value set: [GET, PUT, POST, PATCH, DELETE]"})
        with self._lock:
            self.paths.append(f"{method} {path}")
        status, answer = self._forward(env, method, path, body.get("QueryParameters") or {}, body.get("Body"))
        if status >= 500:
            raise MwaaError("RestApiServerException", 400, {"RestApiStatusCode": status, "RestApiResponse": answer})
        if status >= 400:
            raise MwaaError("RestApiClientException", 400, {"RestApiStatusCode": status, "RestApiResponse": answer})
        return {"RestApiStatusCode": status, "RestApiResponse": answer}

    def _forward(self, env: Environment, method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, Any]:
        url = f"{env.airflow_url}/api/{env.api}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        for fresh in (False, True):
            if env.token is None or fresh:
                env.token = self._token(env)
            req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method,
                                         headers={"Authorization": f"Bearer {env.token}", "Content-Type": "application/json",
                                                  "Accept": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return resp.status, json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and not fresh:
                    continue
                raw = exc.read()
                try:
                    return exc.code, json.loads(raw or b"null")
                except ValueError:
                    return exc.code, {"detail": raw[:300].decode("utf-8", "replace")}
        raise AssertionError("unreachable")

    @staticmethod
    def _token(env: Environment) -> str:
        req = urllib.request.Request(f"{env.airflow_url}/auth/token", method="POST",
                                     data=json.dumps({"username": env.username, "password": env.password}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(json.loads(resp.read())["access_token"])

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], action: str) -> Any:
        if action == "environments" and environ.get("REQUEST_METHOD") == "POST":
            b = _body(environ)
            self.register(b["name"], b["airflow_url"], username=b["username"], password=b["password"], api=b.get("api", "v2"))
            return _json(start_response, "200 OK", {"ok": True})
        if action == "requests":
            with self._lock:
                return _json(start_response, "200 OK", {"operations": dict(self.requests), "paths": list(self.paths)})
        if action == "reset":
            self.reset()
            return _json(start_response, "200 OK", {"ok": True})
        return _json(start_response, "404 Not Found", {"message": f"unknown control action {action!r}"})


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    return json.loads(raw) if raw else {}


def _json(start_response: Callable[..., Any], status: str, body: Any, *, error_type: str | None = None) -> list[bytes]:
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if error_type:
        headers.append(("X-Amzn-ErrorType", error_type))
    start_response(status, headers)
    return [data]

"""Which AWS this process talks to: real AWS, a given endpoint, or a local one.

boto3 honours ``AWS_ENDPOINT_URL``, so product code never passes ``endpoint_url``; entry
points call ``aws_environment(settings)`` once and every client made afterwards goes to the
right place:

- ``settings.aws_endpoint_url`` set: that endpoint.
- ``settings.local_aws`` (the default when no endpoint and no AWS credentials are configured):
  a local AWS already advertised in ``<data_dir>/localaws.json`` by a running
  ``pipepulse demo up`` if it answers; else a new, empty, in-process one for this command, but
  only when asked for (``--local-aws``, ``PIPEPULSE_LOCAL_AWS=true``, ``[aws] local = true``, or
  the demo commands). Otherwise a ConfigError says what to configure: an empty AWS of its own
  would let ``collect`` "succeed" with 0 rows, which hides the missing setup.
- otherwise real AWS with the usual credential chain.

This is the one place besides ``pipepulse.settings`` that touches ``os.environ``: it *sets*
the variables botocore reads. The local AWS is development-only (``devkit.localaws``, moto): an
installation without it (the runtime image) gets a ConfigError saying what to configure or
install instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipepulse.errors import ConfigError
from pipepulse.files import private_dir, write_private
from pipepulse.settings import Settings

__all__ = ["AwsTarget", "add_local_aws_flag", "advertise_local_aws", "aws_environment", "devkit_missing"]

log = logging.getLogger(__name__)
ADVERT = "localaws.json"


@dataclass(frozen=True)
class AwsTarget:
    kind: str  # "endpoint" | "local" | "aws"
    endpoint: str | None
    server: object | None = None  # the in-process LocalAWS, when this process started one


def _advert_path(settings: Settings) -> Path:
    return settings.data_dir / ADVERT


def _alive(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as answer:  # noqa: S310 - our own advert
            return int(answer.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


def _point_at(endpoint: str, region: str) -> None:
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["MOTO_PORT"] = endpoint.rsplit(":", 1)[-1]


@contextmanager
def aws_environment(settings: Settings, *, port: int = 0, start: bool | None = None) -> Iterator[AwsTarget]:
    """Point this process's boto3 clients at the configured AWS for the duration. ``start``: may
    an empty local AWS be started here (None: only when the settings ask for a local AWS
    explicitly; the demo passes True, ``--local-aws`` too)."""
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "MOTO_PORT")}
    server = None
    try:
        if settings.aws_endpoint_url:
            os.environ["AWS_ENDPOINT_URL"] = settings.aws_endpoint_url
            os.environ.setdefault("AWS_DEFAULT_REGION", settings.aws_region)
            yield AwsTarget("endpoint", settings.aws_endpoint_url)
            return
        if not settings.local_aws:
            os.environ.setdefault("AWS_DEFAULT_REGION", settings.aws_region)
            yield AwsTarget("aws", None)
            return
        advert = _read_advert(settings)
        if advert and _alive(advert):
            log.info("using the running local AWS at %s", advert)
            _point_at(advert, settings.aws_region)
            yield AwsTarget("local", advert)
            return
        if not (start or (start is None and settings.local_aws_explicit)):
            raise ConfigError(_no_aws_message(settings, advert))
        try:
            from devkit.localaws import LocalAWS
        except ModuleNotFoundError as exc:
            raise devkit_missing(
                "no AWS endpoint or credentials are configured, and the local AWS pipepulse would start instead", exc,
                alternative="configure AWS credentials (or an instance role) and set PIPEPULSE_LOCAL_AWS=false, or ",
            ) from exc
        server = LocalAWS(port=port).start()
        log.warning(
            "no AWS endpoint or credentials configured: starting a local AWS (moto) in this process at %s, "
            "which holds only what this command puts there; set PIPEPULSE_LOCAL_AWS=false to use real AWS",
            server.endpoint,
        )
        _point_at(server.endpoint, settings.aws_region)
        if settings.aws_accounts:
            # the member accounts' collector roles (and a run or two in each account x region)
            from devkit.accounts_seed import seed_member_accounts

            seed_member_accounts(settings)
        yield AwsTarget("local", server.endpoint, server)
    finally:
        if server is not None:
            server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _no_aws_message(settings: Settings, advert: str | None) -> str:
    from pipepulse.settings import DEMO_MARKER

    if advert or (settings.data_dir / DEMO_MARKER).exists():
        return (f"the demo's local AWS is not running (data folder {settings.data_dir}): start it with `make demo` or "
                "`pipepulse demo up` (in another terminal), or pass --local-aws for an empty one that lives for this command")
    where = f" by {settings.config_path}" if settings.config_path else ""
    none = "" if settings.config_path else "no config file, "
    return (f"no AWS is configured{where} ({none}no AWS credentials, no endpoint, and no demo running in the data "
            f"folder {settings.data_dir}): configure AWS credentials "
            "(AWS_PROFILE or an instance role), or set AWS_ENDPOINT_URL / [aws] endpoint_url, or run `make demo` "
            "(or `pipepulse demo up`) and use its config (`--config examples/demo.toml`), or pass --local-aws for an "
            "empty local AWS for this command")


def add_local_aws_flag(parser: argparse.ArgumentParser) -> None:
    """``--local-aws``: start an empty in-process local AWS when no other AWS is configured."""
    parser.add_argument("--local-aws", action="store_true",
                        help="with no AWS configured and no demo running, start an empty local AWS (moto) "
                             "for this command")


def devkit_missing(what: str, exc: ModuleNotFoundError, *, alternative: str = "") -> ConfigError:
    """The error for a development-only feature (the local AWS, the demo) where the development
    kit is not installed (the runtime image installs requirements.txt only)."""
    return ConfigError(
        f"{what} needs pipepulse's development kit (the devkit package and moto; {exc.name} is not installed): "
        f"{alternative}install it from a checkout with `make install`, or `pip install -r requirements-dev.txt` "
        "then `pip install -e .`"
    )


def _read_advert(settings: Settings) -> str | None:
    path = _advert_path(settings)
    try:
        data = json.loads(path.read_text())
        return str(data["endpoint"])
    except (OSError, ValueError, KeyError):
        return None


@contextmanager
def advertise_local_aws(settings: Settings, endpoint: str) -> Iterator[Path]:
    """Tell other pipepulse commands (same data folder) where the running local AWS is."""
    path = _advert_path(settings)
    private_dir(path.parent)
    write_private(path, json.dumps({"endpoint": endpoint, "pid": os.getpid()}), what="local AWS advert")
    try:
        yield path
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass

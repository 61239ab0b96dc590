"""The collector sources by name, apart from ``runner`` so that the command line can list them
(``pipepulse collect --source``) without importing boto3, SQLAlchemy and pandas at start-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collectors.base import Collector
    from pipepulse.settings import Settings

__all__ = ["SOURCES"]

# name -> "module" (its create), "module:function", or a factory ``(settings) -> Collector``.
# Order matters: run sources before `logs`, which reads the failed runs they stored.
SOURCES: dict[str, str | Callable[[Settings], Collector]] = {
    "reference": "collectors.reference",
    "stepfunctions": "collectors.stepfunctions",
    "glue": "collectors.glue",
    "cloudwatch": "collectors.cloudwatch",
    "logs": "collectors.logs",
    "ce": "collectors.costexplorer",
    "focus": "collectors.costfiles:create_focus",
    "cur": "collectors.costfiles:create_cur",
    "athena": "collectors.athena",
    "airflow": "collectors.airflow",
}

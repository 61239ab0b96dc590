"""DAGs the Airflow tests (and the demo's recording) trigger on a real Airflow 3.

Each shows one thing the collector must read: ``pp_success`` (two tasks in a row), ``pp_fail``
(a task raises), ``pp_retry`` (fails on its first try, succeeds on its second), ``pp_timeout``
(a task outlives its ``execution_timeout``) and ``pp_mapped`` (one task mapped over three
inputs). No schedule: the tests trigger them through the REST API.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import dag, task

START = datetime(2026, 1, 1)
COMMON = {"schedule": None, "start_date": START, "catchup": False, "tags": ["pipepulse"]}


@dag(**COMMON)
def pp_success():
    @task
    def extract() -> int:
        return 3

    @task
    def load(n: int) -> int:
        return n * 2

    load(extract())


@dag(**COMMON)
def pp_fail():
    @task
    def prepare() -> None:
        return None

    @task
    def transform() -> None:
        raise ValueError("bad input row 17")

    prepare() >> transform()


@dag(**COMMON)
def pp_retry():
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def flaky(ti=None) -> str:
        if ti.try_number < 2:
            raise RuntimeError("the warehouse is busy; try again")
        return "ok"

    flaky()


@dag(**COMMON)
def pp_timeout():
    @task(execution_timeout=timedelta(seconds=2), retries=0)
    def slow() -> None:
        time.sleep(30)

    slow()


@dag(**COMMON)
def pp_mapped():
    @task
    def parts() -> list[int]:
        return [1, 2, 3]

    @task
    def square(x: int) -> int:
        return x * x

    square.expand(x=parts())


pp_success()
pp_fail()
pp_retry()
pp_timeout()
pp_mapped()

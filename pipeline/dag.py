"""A small DAG executor: ready stages run concurrently, each with retries and a timeout.

``execute(stages, ...)`` runs the stages in *waves*: every stage whose dependencies are done is
submitted to a thread pool at once, the wave is awaited, and its outcomes are recorded in stage
order, so the ledger of a run is the same whatever order the threads finish in (a backfill with
the same seed writes the same ledger). The cost of the barrier: a stage waits for its whole wave,
not only its own dependencies.

Time comes from an injected ``clock()`` and waiting from an injected ``sleep(seconds)``: the real
ones for a live run, a simulated clock for a backfill (nothing really sleeps). A stage's duration
is what it took, unless its result says how long it *would* have taken (``StageResult.seconds``,
used by simulated work).

Retries: which errors are transient is decided in ``is_transient`` only. A transient failure with
attempts left puts the step attempt (and the run) in AWAITING_RETRY with ``next_retry_at``; the
retry is a new step attempt. Backoff is exponential with jitter, from the module constants below
(tests set them to zero). A stage over its timeout counts as TIMED_OUT and is retried like a
transient error. Limit: a live stage that overruns its timeout keeps its thread until it returns
(Python cannot kill a thread); its late result is ignored.
"""

from __future__ import annotations

import concurrent.futures as cf
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pipeline import states
from pipepulse.errors import PipelineError

__all__ = [
    "InlineExecutor",
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_JITTER",
    "BACKOFF_MAX_SECONDS",
    "Observer",
    "Outcome",
    "Stage",
    "StageContext",
    "StageResult",
    "StageTimeout",
    "backoff_delay",
    "error_type",
    "execute",
    "is_transient",
]

# Delay before attempt n+1 is drawn from [cap * (1 - JITTER), cap], cap = min(MAX, BASE * 2**(n-1)).
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 120.0
BACKOFF_JITTER = 0.5

_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TooManyRequestsException",
}


class StageTimeout(TimeoutError):
    """A stage attempt ran longer than its timeout."""


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
    cap = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return cap * (1 - BACKOFF_JITTER) + rng.random() * cap * BACKOFF_JITTER


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help: throttling, 5xx, timeouts, dropped connections."""
    if isinstance(exc, PipelineError):
        return exc.transient
    if isinstance(exc, TimeoutError | ConnectionError | BotoConnectionError | ReadTimeoutError):
        return True
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return err.get("Code") in _TRANSIENT_CODES or status >= 500
    return False


def error_type(exc: BaseException) -> str:
    """A short error type for the ledger: the AWS error code, or the exception's type."""
    if isinstance(exc, PipelineError):
        return exc.error_type
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") or type(exc).__name__
    return type(exc).__name__


@dataclass
class StageResult:
    """What a stage hands back: counts, a value for the stages after it, resource usage."""

    records_in: int | None = None
    records_out: int | None = None
    records_rejected: int | None = None
    value: Any = None
    usage: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None  # simulated duration; None = measured


@dataclass
class StageContext:
    stage: str
    attempt: int
    started_at: datetime
    inputs: dict[str, Any]  # value of each dependency's result


@dataclass(frozen=True)
class Stage:
    name: str
    fn: Callable[[StageContext], StageResult]
    deps: tuple[str, ...] = ()
    max_attempts: int = 3
    timeout_seconds: float = 900.0


@dataclass
class Outcome:
    """How the whole DAG ended."""

    status: str  # SUCCEEDED | FAILED | TIMED_OUT
    started_at: datetime
    ended_at: datetime
    results: dict[str, StageResult]
    retries: int = 0
    error_type: str | None = None
    error_message: str | None = None
    attempts: list[tuple[str, int, float, StageResult | None]] = field(
        default_factory=list
    )  # stage, attempt, seconds, result


class Observer(Protocol):
    """Told about every state change, in a deterministic order (the ledger, logs, metrics)."""

    def run_state(self, status: str, at: datetime) -> None: ...

    def step_state(
        self,
        stage: str,
        attempt: int,
        status: str,
        *,
        started_at: datetime,
        ended_at: datetime | None = None,
        result: StageResult | None = None,
        error: BaseException | None = None,
        next_retry_at: datetime | None = None,
    ) -> None: ...


def execute(
    stages: list[Stage],
    *,
    observer: Observer,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    rng: random.Random,
    pool: cf.Executor,
) -> Outcome:
    """Run ``stages`` (a DAG by ``deps``) to the end; see the module docstring."""
    by_name = {s.name: s for s in stages}
    for s in stages:
        for d in s.deps:
            if d not in by_name:
                raise ValueError(f"stage {s.name} depends on unknown stage {d}")
    start = clock()
    done: dict[str, StageResult] = {}
    retry_due: dict[
        str, tuple[int, datetime, str]
    ] = {}  # stage -> (next attempt, when, status of failed attempt)
    outcome = Outcome(states.SUCCEEDED, start, start, done)
    run_status = states.RUNNING
    observer.run_state(states.RUNNING, start)
    while len(done) < len(stages):
        wave = sorted(
            s.name for s in stages if s.name not in done and all(d in done for d in s.deps)
        )
        if not wave:
            raise ValueError("the stages have a cycle")
        # a wave starts together: wait until every retry in it is due, then start all of it
        due = max((retry_due[n][1] for n in wave if n in retry_due), default=None)
        if due is not None:
            wait = (due - clock()).total_seconds()
            if wait > 0:
                sleep(wait)
        t0 = clock()
        if run_status == states.AWAITING_RETRY:
            run_status = states.RUNNING
            observer.run_state(states.RUNNING, t0)
        attempts: dict[str, int] = {}
        for name in wave:
            attempt = 1
            if name in retry_due:
                attempt, _, failed_status = retry_due.pop(name)
                observer.step_state(name, attempt - 1, failed_status, started_at=t0)
            attempts[name] = attempt
            observer.step_state(name, attempt, states.RUNNING, started_at=t0)
        futures = {
            name: pool.submit(
                _timed,
                by_name[name].fn,
                StageContext(
                    name, attempts[name], t0, {d: done[d].value for d in by_name[name].deps}
                ),
            )
            for name in wave
        }
        wave_end = t0
        failure: tuple[str, BaseException, str] | None = None
        for name in wave:
            stage = by_name[name]
            attempt = attempts[name]
            result, error, seconds = _wait(futures[name], stage.timeout_seconds)
            if result is not None and result.seconds is not None:
                seconds = result.seconds
            elif error is not None and getattr(error, "seconds", None) is not None:
                seconds = error.seconds  # a simulated failure says how long it took to fail
            if error is None and seconds > stage.timeout_seconds:
                error = StageTimeout(
                    f"stage {name} ran over its {stage.timeout_seconds:g} s timeout"
                )
            if isinstance(error, StageTimeout):
                seconds = stage.timeout_seconds
            end = t0 + timedelta(seconds=seconds)
            wave_end = max(wave_end, end)
            outcome.attempts.append((name, attempt, seconds, result))
            if error is None:
                assert result is not None
                done[name] = result
                observer.step_state(
                    name, attempt, states.SUCCEEDED, started_at=t0, ended_at=end, result=result
                )
                continue
            timed_out = isinstance(error, StageTimeout)
            failed_status = states.TIMED_OUT if timed_out else states.FAILED
            if is_transient(error) and attempt < stage.max_attempts:
                next_at = end + timedelta(seconds=backoff_delay(attempt, rng))
                retry_due[name] = (attempt + 1, next_at, failed_status)
                outcome.retries += 1
                observer.step_state(
                    name,
                    attempt,
                    states.AWAITING_RETRY,
                    started_at=t0,
                    ended_at=end,
                    result=result,
                    error=error,
                    next_retry_at=next_at,
                )
            else:
                observer.step_state(
                    name,
                    attempt,
                    failed_status,
                    started_at=t0,
                    ended_at=end,
                    result=result,
                    error=error,
                )
                if failure is None:
                    failure = (name, error, failed_status)
        # the simulated clock catches up with the wave; a real one is already there
        lag = (wave_end - clock()).total_seconds()
        if lag > 0:
            sleep(lag)
        if failure is not None:
            name, error, status = failure
            for pending, (attempt, _, failed_status) in sorted(retry_due.items()):
                observer.step_state(pending, attempt - 1, failed_status, started_at=t0)
            outcome.status = status
            outcome.error_type = error_type(error)
            outcome.error_message = f"stage {name}: {error}"
            outcome.ended_at = wave_end
            return outcome
        if retry_due and len(done) < len(stages):
            run_status = states.AWAITING_RETRY
            observer.run_state(states.AWAITING_RETRY, wave_end)
        outcome.ended_at = wave_end
    return outcome


class InlineExecutor(cf.Executor):
    """Runs each submitted call at once in the caller's thread.

    For simulations (the backfill), where stages only pretend to work: the virtual timeline is
    still parallel (a wave's stages share a start time), but no thread hand-offs are paid.
    """

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter, as a pool would
            future.set_exception(exc)
        return future


def _timed(
    fn: Callable[[StageContext], StageResult], ctx: StageContext
) -> tuple[StageResult, float]:
    t = time.perf_counter()
    result = fn(ctx)
    return result, time.perf_counter() - t


def _wait(
    future: cf.Future, timeout: float
) -> tuple[StageResult | None, BaseException | None, float]:
    t = time.perf_counter()
    try:
        result, seconds = future.result(timeout=timeout)
    except cf.TimeoutError:
        return None, StageTimeout(f"ran over its {timeout:g} s timeout"), timeout
    except Exception as exc:  # noqa: BLE001 - a stage's failure is data, recorded on the run
        return None, exc, time.perf_counter() - t
    return result, None, seconds

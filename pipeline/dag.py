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

Retries: which errors are transient is ``pipepulse.retries.is_transient`` (plus a
``PipelineError`` that says so). A transient failure with attempts left puts the step attempt
(and the run) in AWAITING_RETRY with ``next_retry_at``; the retry is a new step attempt. Backoff
is exponential with jitter, ``pipepulse.retries.PIPELINE_STAGES`` (tests replace it). A stage
over its timeout counts as TIMED_OUT and is retried like a transient error. Limit: a live stage that overruns its timeout keeps its thread until it returns
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

from botocore.exceptions import ClientError

from pipepulse import retries
from pipepulse.errors import PipelineError
from pipepulse.vocab import AWAITING_RETRY, FAILED, RUNNING, SUCCEEDED, TIMED_OUT

__all__ = [
    "InlineExecutor",
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

class StageTimeout(TimeoutError):
    """A stage attempt ran longer than its timeout."""


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
    return retries.PIPELINE_STAGES.delay(attempt, rng.random())


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help: a PipelineError that says so, else ``pipepulse.retries``."""
    if isinstance(exc, PipelineError):
        return exc.transient
    return retries.is_transient(exc)


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
    run = _Execution(stages, observer=observer, clock=clock, sleep=sleep, rng=rng, pool=pool)
    while not run.all_done():
        wave = run.next_wave()
        t0, attempts = run.start(wave)
        failure = run.await_wave(wave, attempts, t0)
        if failure is not None:
            return run.fail(failure, t0)
        run.pause_for_retries()
    return run.outcome


# (stage, the error, the status of its failed attempt)
_Failure = tuple[str, BaseException, str]


class _Execution:
    """One run of ``execute``: the stages done, the retries due and the outcome so far."""

    def __init__(self, stages: list[Stage], *, observer: Observer, clock: Callable[[], datetime],
                 sleep: Callable[[float], None], rng: random.Random, pool: cf.Executor) -> None:
        self.stages = stages
        self.by_name = {s.name: s for s in stages}
        for s in stages:
            for d in s.deps:
                if d not in self.by_name:
                    raise ValueError(f"stage {s.name} depends on unknown stage {d}")
        self.observer, self.clock, self.sleep, self.rng, self.pool = observer, clock, sleep, rng, pool
        self.done: dict[str, StageResult] = {}
        self.retry_due: dict[str, tuple[int, datetime, str]] = {}  # stage -> (next attempt, when, failed status)
        start = clock()
        self.outcome = Outcome(SUCCEEDED, start, start, self.done)
        self.status = RUNNING
        self.wave_end = start
        observer.run_state(RUNNING, start)

    def all_done(self) -> bool:
        return len(self.done) == len(self.stages)

    def next_wave(self) -> list[str]:
        """Every stage not done whose dependencies are, in name order."""
        wave = sorted(s.name for s in self.stages if s.name not in self.done and all(d in self.done for d in s.deps))
        if not wave:
            raise ValueError("the stages have a cycle")
        return wave

    def start(self, wave: list[str]) -> tuple[datetime, dict[str, int]]:
        """Start a wave together, once every retry in it is due: the run is RUNNING again, each
        retried stage's failed attempt gets its final status, each stage's attempt is RUNNING."""
        due = max((self.retry_due[n][1] for n in wave if n in self.retry_due), default=None)
        if due is not None and (wait := (due - self.clock()).total_seconds()) > 0:
            self.sleep(wait)
        t0 = self.clock()
        if self.status == AWAITING_RETRY:
            self.status = RUNNING
            self.observer.run_state(RUNNING, t0)
        attempts: dict[str, int] = {}
        for name in wave:
            attempt = 1
            if name in self.retry_due:
                attempt, _, failed_status = self.retry_due.pop(name)
                self.observer.step_state(name, attempt - 1, failed_status, started_at=t0)
            attempts[name] = attempt
            self.observer.step_state(name, attempt, RUNNING, started_at=t0)
        return t0, attempts

    def await_wave(self, wave: list[str], attempts: dict[str, int], t0: datetime) -> _Failure | None:
        """Run the wave's stages in the pool, then record each outcome in stage order (so the
        ledger is the same whatever order threads finish in); the first failure for good."""
        futures = {
            name: self.pool.submit(
                _timed, self.by_name[name].fn,
                StageContext(name, attempts[name], t0, {d: self.done[d].value for d in self.by_name[name].deps}),
            )
            for name in wave
        }
        self.wave_end = t0
        failure: _Failure | None = None
        for name in wave:
            found = self._record(self.by_name[name], attempts[name], futures[name], t0)
            failure = failure or found
        # the simulated clock catches up with the wave; a real one is already there
        lag = (self.wave_end - self.clock()).total_seconds()
        if lag > 0:
            self.sleep(lag)
        return failure

    def _record(self, stage: Stage, attempt: int, future: cf.Future, t0: datetime) -> _Failure | None:
        """One attempt's outcome: succeeded, awaiting a retry, or failed for good."""
        result, error, seconds = _wait(future, stage.timeout_seconds)
        if result is not None and result.seconds is not None:
            seconds = result.seconds
        elif error is not None and getattr(error, "seconds", None) is not None:
            seconds = error.seconds  # a simulated failure says how long it took to fail
        if error is None and seconds > stage.timeout_seconds:
            error = StageTimeout(f"stage {stage.name} ran over its {stage.timeout_seconds:g} s timeout")
        if isinstance(error, StageTimeout):
            seconds = stage.timeout_seconds
        end = t0 + timedelta(seconds=seconds)
        self.wave_end = max(self.wave_end, end)
        self.outcome.attempts.append((stage.name, attempt, seconds, result))
        if error is None:
            assert result is not None
            self.done[stage.name] = result
            self.observer.step_state(stage.name, attempt, SUCCEEDED, started_at=t0, ended_at=end, result=result)
            return None
        failed_status = TIMED_OUT if isinstance(error, StageTimeout) else FAILED
        if is_transient(error) and attempt < stage.max_attempts:
            next_at = end + timedelta(seconds=backoff_delay(attempt, self.rng))
            self.retry_due[stage.name] = (attempt + 1, next_at, failed_status)
            self.outcome.retries += 1
            self.observer.step_state(stage.name, attempt, AWAITING_RETRY, started_at=t0, ended_at=end, result=result,
                                     error=error, next_retry_at=next_at)
            return None
        self.observer.step_state(stage.name, attempt, failed_status, started_at=t0, ended_at=end, result=result, error=error)
        return stage.name, error, failed_status

    def fail(self, failure: _Failure, t0: datetime) -> Outcome:
        """End the run on a stage that failed for good; retries still due get their final status."""
        name, error, status = failure
        for pending, (attempt, _, failed_status) in sorted(self.retry_due.items()):
            self.observer.step_state(pending, attempt - 1, failed_status, started_at=t0)
        self.outcome.status = status
        self.outcome.error_type = error_type(error)
        self.outcome.error_message = f"stage {name}: {error}"
        self.outcome.ended_at = self.wave_end
        return self.outcome

    def pause_for_retries(self) -> None:
        """After a wave: the run waits in AWAITING_RETRY when a retry is due and stages remain."""
        if self.retry_due and not self.all_done():
            self.status = AWAITING_RETRY
            self.observer.run_state(AWAITING_RETRY, self.wave_end)
        self.outcome.ended_at = self.wave_end


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

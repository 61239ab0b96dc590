"""``pipepulse pipeline``: the bundled reference pipeline: ``run``, ``backfill``, ``schedule``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime

from cli.awsenv import add_local_aws_flag, aws_environment
from pipepulse.errors import ConfigError, InputError
from pipepulse.settings import PipelineConfig, Settings
from pipepulse.vocab import SUCCEEDED


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="the bundled reference pipeline: run it, backfill history, schedule it",
        description="The reference pipeline writes its own run ledger, CloudWatch metrics and logs, "
        "and (backfill) the demo account's FOCUS cost export.",
    )
    psub = p.add_subparsers(dest="pipeline_command", metavar="COMMAND")
    psub.required = True

    run = psub.add_parser(
        "run",
        help="run one pipeline once, now (manual trigger)",
        description="Run a reference pipeline once. Without --input it reads the files under "
        "<[pipeline] source>/<name>/ that no successful run has loaded yet.",
    )
    run.add_argument("--pipeline", required=True, metavar="NAME", help="pipeline name, e.g. orders")
    run.add_argument(
        "--input",
        metavar="PATH|s3://...",
        help="a file or folder (local or s3://bucket/prefix) to process",
    )
    add_local_aws_flag(run)
    run.set_defaults(handler=cmd_run)

    bf = psub.add_parser(
        "backfill",
        help="simulate N days of scheduled runs (no waiting) with realistic faults",
        description="Replay N days of the configured reference pipelines on a simulated clock: ledger, "
        "metrics, logs, sample files in S3 and the FOCUS cost export. Same seed, same history.",
    )
    bf.add_argument(
        "--days", type=int, required=True, metavar="N", help="how many days to simulate"
    )
    bf.add_argument("--seed", type=int, default=7, metavar="S", help="random seed (default 7)")
    bf.add_argument(
        "--end", metavar="ISO", help="end of the window, UTC (default: now, to the hour)"
    )
    add_local_aws_flag(bf)
    bf.set_defaults(handler=cmd_backfill)

    sc = psub.add_parser(
        "schedule",
        help="keep running: fire runs on their cron/interval and on file arrival",
        description="Poll the triggers of the reference pipelines every --poll seconds and run what is "
        "due. Stops cleanly on SIGTERM or Ctrl-C.",
    )
    sc.add_argument(
        "--pipeline", action="append", metavar="NAME", help="only this pipeline (repeatable)"
    )
    sc.add_argument(
        "--poll",
        type=float,
        metavar="SECONDS",
        help="seconds between polls (default [pipeline] poll_seconds)",
    )
    sc.add_argument("--max-iterations", type=int, metavar="N", help="stop after N polls")
    sc.add_argument("--until", metavar="ISO", help="stop at this UTC time")
    add_local_aws_flag(sc)
    sc.set_defaults(handler=cmd_schedule)


def _reference_pipelines(settings: Settings, names: list[str] | None) -> list[PipelineConfig]:
    refs = [p for p in settings.pipelines if p.source == "reference"]
    if not names:
        if not refs:
            from pipeline.backfill import DEFAULT_PIPELINES

            return list(DEFAULT_PIPELINES)
        return refs
    by_name = {p.name: p for p in refs}
    out = []
    for n in names:
        if n in by_name:
            out.append(by_name[n])
        elif refs:
            raise ConfigError(
                f"{settings.config_label}: no reference pipeline named {n!r}; "
                f"configured: {', '.join(sorted(by_name))}"
            )
        else:
            out.append(PipelineConfig(name=n))
    return out


def _parse_time(value: str, flag: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"{flag}: {value!r} is not an ISO-8601 time, e.g. 2026-11-20T00:00:00Z"
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.config import pipeline_section
    from pipeline.run import RunRequest, Runtime, resolve_inputs, run_pipeline

    cfg = _reference_pipelines(settings, [args.pipeline])[0]
    section = pipeline_section(settings)
    with aws_environment(settings, start=args.local_aws or None):
        rt = Runtime.create(section, settings.prices, echo=sys.stdout)
        try:
            for st in (rt.source, rt.output, rt.quarantine):
                st.ensure()
            inputs = resolve_inputs(args.input) if args.input else None
            result = run_pipeline(rt, RunRequest(cfg.name, trigger="manual", inputs=inputs))
        finally:
            rt.close()
    line = (
        f"{result.pipeline} run {result.run_id}: {result.status}; {result.records_in} records in, "
        f"{result.records_out} loaded, {result.records_rejected} quarantined; ${result.cost_usd:.4f}"
    )
    if result.error_message:
        line += f"; {result.error_type}: {result.error_message}"
    print(line, file=sys.stderr)
    return 0 if result.status == SUCCEEDED else 1


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.backfill import backfill

    if args.days <= 0:
        raise InputError(f"--days: expected a positive number of days, got {args.days}")
    end = _parse_time(args.end, "--end") if args.end else datetime.now(UTC)
    with aws_environment(settings, start=args.local_aws or None):
        summary = backfill(settings, days=args.days, end=end, seed=args.seed, progress=_progress_bar())
    print("\n".join(summary.lines()))
    return 0


def _progress_bar():
    """A ``(done, total)`` callback drawing pipepulse's progress bar (only on a terminal)."""
    from cli.progress import progress

    state: dict = {"n": 0}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = progress(range(total), total=total, label="backfill days")
        while state["n"] < done:
            next(state["bar"], None)
            state["n"] += 1
        if done >= total:
            for _ in state["bar"]:
                pass

    return update


def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    pipelines = _reference_pipelines(settings, args.pipeline)
    until = _parse_time(args.until, "--until") if args.until else None
    with aws_environment(settings, start=args.local_aws or None):
        results = _schedule(args, settings, pipelines, until)
    print(f"stopped after {len(results)} run(s)", file=sys.stderr)
    return 0


def _schedule(args: argparse.Namespace, settings: Settings, pipelines: list[PipelineConfig], until):
    from pipeline.config import pipeline_section
    from pipeline.run import Runtime
    from pipeline.triggers import Scheduler

    section = pipeline_section(settings)
    stop = threading.Event()
    rt = Runtime.create(section, settings.prices, echo=sys.stdout, sleep=lambda s: stop.wait(s))
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for st in (rt.source, rt.output, rt.quarantine):
            st.ensure()
        sched = Scheduler(
            rt,
            pipelines,
            poll_seconds=args.poll or section.poll_seconds,
            stop=stop,
            on_run=lambda r: print(f"{r.pipeline} {r.run_id}: {r.status}", file=sys.stderr),
        )
        print(
            f"scheduling {', '.join(p.name for p in pipelines)}; polling every {sched.poll_seconds:g} s "
            "(SIGTERM or Ctrl-C stops)",
            file=sys.stderr,
        )
        return sched.loop(max_iterations=args.max_iterations, until=until)
    finally:
        signal.signal(signal.SIGTERM, previous)
        rt.close()

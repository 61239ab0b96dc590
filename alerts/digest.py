"""One digest pass, as a recipe: fetch, filter, look up what was sent, suppress, format, send, mark sent.

``run_digest(settings, engine, period=..., now=...)`` takes the rules whose frequency is
``period`` and for each recipient:

1. **fetch** every item the rules find (``alerts.collect``); failed runs over the period, widened
   back to cover items of an earlier failed send;
2. **filter** by the rule's pipelines (acknowledged and snoozed anomalies never come back from
   the store read);
3. **look up** what this rule already told this recipient (``notifications``): an item at a
   version already sent is not sent again;
4. **suppress** an item whose earlier version was sent less than the suppression interval ago,
   unless it got worse (higher severity) or was reopened;
5. **format** one message per group of recipients with the same new items (``alerts.render``);
6. **send** it (``alerts.send``), having recorded it as pending;
7. **mark** its items sent once the server accepted it, or the digest failed with the error; the
   items then stay unsent and the next pass picks them up.

A period with nothing new sends nothing, or a short all-clear when ``send_all_clear`` is set
(once per period and day). ``dry_run`` stops after step 5 and writes nothing to the database.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from alerts.collect import Context, Item, build_context, fetch_items, severity_rank
from alerts.render import Rendered, render_digest
from alerts.rules import FREQUENCIES, AlertConfig, Rule, load_alert_config
from alerts.send import build_message, deliver
from pipepulse.errors import DeliveryError, InputError
from pipepulse.settings import Settings
from store import alerts as store_alerts
from store.state import acquire_lock, release_lock

__all__ = ["ALL_CLEAR_RULE", "DigestResult", "SentDigest", "run_digest"]

log = logging.getLogger(__name__)

PERIOD_LENGTH = {"immediate": timedelta(hours=24), "daily": timedelta(days=1), "weekly": timedelta(days=7)}
MAX_LOOKBACK = timedelta(days=31)  # how far back a failed send's items are still fetched
ALL_CLEAR_RULE = "~all-clear"  # notification rule name for all-clear messages (not a valid config name clash)
LOCK_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class SentDigest:
    """One message of a pass: to whom, what, and how it went."""

    digest_id: str | None  # None in a dry run
    recipients: tuple[str, ...]
    subject: str
    status: str  # sent | failed | dry-run
    items: tuple[str, ...]  # item keys
    error: str | None = None
    refused: tuple[str, ...] = ()
    rendered: Rendered | None = field(default=None, repr=False)


@dataclass
class DigestResult:
    """What a pass did; ``ok`` is False when any message failed."""

    period: str
    now: datetime
    digests: list[SentDigest] = field(default_factory=list)
    new_items: int = 0  # (rule, recipient, item) pairs chosen to send
    already_sent: int = 0  # pairs skipped because that version was sent before
    suppressed: int = 0  # pairs held back by the suppression interval
    locked: bool = False  # another pass of this period was running; nothing done
    rules: int = 0  # rules of this period in the config
    out: Path | None = None

    @property
    def sent(self) -> list[SentDigest]:
        return [d for d in self.digests if d.status == "sent"]

    @property
    def failed(self) -> list[SentDigest]:
        return [d for d in self.digests if d.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def status(self) -> str:
        """``failed`` (a message failed), ``sent``, ``dry-run``, ``locked`` or ``nothing`` (for the scheduler)."""
        if self.failed:
            return "failed"
        if self.locked:
            return "locked"
        if self.sent:
            return "sent"
        return "dry-run" if self.digests else "nothing"

    @property
    def error(self) -> str:
        """The failed messages' errors, one per line ('' when none failed)."""
        return "\n".join(f"{', '.join(d.recipients)}: {d.error}" for d in self.failed)


def _severity_of(version: str) -> str:
    return version.rsplit("|", 1)[-1] if "|" in version else "low"


def _decide(
    items: Sequence[Item], rule: Rule, recipient: str, state: pd.DataFrame, config: AlertConfig, now: datetime
) -> tuple[list[Item], list[Item], int, set[str]]:
    """(to send, already told, suppressed count, keys sent because they got worse) for one rule
    and recipient."""
    rows = state[(state["rule"] == rule.name) & (state["recipient"] == recipient)] if not state.empty else state
    by_key: dict[str, list] = defaultdict(list)
    for r in rows.itertuples(index=False):
        by_key[r.item_key].append(r)  # newest first
    send, told, held, worse_keys = [], [], 0, set()
    window = config.suppression_for(rule)
    for it in items:
        past = by_key.get(it.key, [])
        if any(p.item_version == it.version and p.status == "sent" for p in past):
            told.append(it)
            continue
        last = next((p for p in past if p.status == "sent"), None)
        if last is not None:
            sent_at = pd.Timestamp(last.sent_at).to_pydatetime()
            worse = severity_rank(it.severity) > severity_rank(_severity_of(last.item_version))
            reopened = it.reopened_at is not None and it.reopened_at > sent_at
            if now - sent_at < window and not (worse or reopened):
                held += 1
                told.append(it)
                continue
            if worse:
                worse_keys.add(it.key)
        send.append(it)
    return send, told, held, worse_keys


def _window_key(period: str, now: datetime) -> str:
    if period == "weekly":
        y, w, _ = now.isocalendar()
        return f"{y}-W{w:02d}"
    return now.strftime("%Y-%m-%d")


def run_digest(
    settings: Settings,
    engine: Engine,
    *,
    period: str,
    now: datetime,
    dry_run: bool = False,
    out: str | Path | None = None,
) -> DigestResult:
    """Run one digest pass for the rules of ``period`` (immediate, daily or weekly)."""
    if period not in FREQUENCIES:
        raise InputError(f"unknown digest period {period!r}; expected one of {', '.join(FREQUENCIES)}")
    now = now.astimezone(UTC)
    config = load_alert_config(settings)
    rules = config.rules_for(period)
    result = DigestResult(period=period, now=now, out=Path(out) if out else None, rules=len(rules))
    owner = f"digest-{uuid.uuid4().hex[:12]}"
    lock = f"alerts.digest.{period}"
    if not dry_run and not acquire_lock(engine, lock, owner, now=now, ttl=LOCK_TTL):
        log.warning("another %s digest pass is running; skipping this one", period)
        result.locked = True
        return result
    try:
        _run(settings, engine, config, rules, result, period=period, now=now, dry_run=dry_run)
    finally:
        if not dry_run:
            release_lock(engine, lock, owner)
    return result


def _run(
    settings: Settings,
    engine: Engine,
    config: AlertConfig,
    rules: Sequence[Rule],
    result: DigestResult,
    *,
    period: str,
    now: datetime,
    dry_run: bool,
) -> None:
    length = PERIOD_LENGTH[period]
    start = now - length
    recipients = sorted({r for rule in rules for r in rule.recipients})
    names = [r.name for r in rules]
    plans: dict[tuple, dict] = {}  # group key -> {recipients, items, rules, context}

    with engine.connect() as conn:
        fetch_start = start
        oldest = store_alerts.oldest_unsent(conn, names)
        if oldest is not None:
            fetch_start = min(start, max(oldest - length, now - MAX_LOOKBACK))
        items = fetch_items(conn, rules, settings=settings, config=config, start=fetch_start, end=now, now=now)
        state = store_alerts.notification_state(conn, [*names, ALL_CLEAR_RULE], recipients)
        contexts: dict[tuple[str, ...], Context] = {}

        for recipient in recipients:
            mine = [r for r in rules if recipient in r.recipients]
            chosen: dict[str, tuple[Item, list[str]]] = {}  # key -> (item, rules that chose it)
            still_open: dict[str, Item] = {}
            escalated: set[str] = set()
            for rule in mine:
                rule_items = [i for i in items if i.rule == rule.name and rule.covers(i.pipeline)]
                send, told, held, worse = _decide(rule_items, rule, recipient, state, config, now)
                escalated |= worse
                result.already_sent += len(told) - held
                result.suppressed += held
                for it in send:
                    prev = chosen.get(it.key)
                    if prev is None or severity_rank(it.severity) > severity_rank(prev[0].severity):
                        chosen[it.key] = (it, [*(prev[1] if prev else []), rule.name])
                    else:
                        prev[1].append(rule.name)
                for it in told:
                    if it.kind == "anomalies":
                        still_open[it.key] = it
            filters = tuple(sorted({p for r in mine for p in r.pipelines})) if all(r.pipelines for r in mine) else ()
            all_clear = False
            if not chosen:
                if not config.send_all_clear or period == "immediate":
                    continue
                key = f"all-clear:{period}:{_window_key(period, now)}"
                if not state.empty and (
                    (state["rule"] == ALL_CLEAR_RULE) & (state["recipient"] == recipient) & (state["item_key"] == key)
                    & (state["status"] == "sent")
                ).any():
                    continue
                all_clear = True
            result.new_items += sum(len(r) for _, r in chosen.values())
            for k in chosen:
                still_open.pop(k, None)
            group = (
                tuple(sorted((it.key, it.version) for it, _ in chosen.values())),
                filters,
                tuple(sorted(still_open)),
                all_clear,
                tuple(sorted(escalated)),
            )
            plan = plans.setdefault(
                group,
                {"recipients": [], "items": [i for i, _ in chosen.values()], "pairs": [], "rules": set(),
                 "filters": filters, "still_open": list(still_open.values()), "all_clear": all_clear,
                 "escalated": escalated},
            )
            plan["recipients"].append(recipient)
            plan["rules"].update(r.name for r in mine)
            for it, rule_names in chosen.values():
                for name in rule_names:
                    plan["pairs"].append((name, recipient, it.key, it.version))
            if all_clear:
                plan["pairs"].append((ALL_CLEAR_RULE, recipient, f"all-clear:{period}:{_window_key(period, now)}", "1|low"))

        for plan in plans.values():
            if plan["filters"] not in contexts:
                contexts[plan["filters"]] = build_context(
                    conn, settings=settings, config=config, period=period, start=start, end=now, now=now,
                    pipelines=plan["filters"] or None,
                )

    for plan in plans.values():
        ctx = contexts[plan["filters"]]
        ctx = Context(**{**ctx.__dict__, "still_open": plan["still_open"], "escalated": plan["escalated"]})
        rendered = render_digest(plan["items"], ctx, rules=sorted(plan["rules"]), all_clear=plan["all_clear"])
        to = tuple(plan["recipients"])
        keys = tuple(sorted(i.key for i in plan["items"]))
        if dry_run:
            result.digests.append(SentDigest(None, to, rendered.subject, "dry-run", keys, rendered=rendered))
            continue
        result.digests.append(_send(engine, config, rendered, to, keys, plan["pairs"], period=period, now=now))

    if result.out is not None:
        _write_out(result, settings, engine, config, period=period, start=start, now=now)


def _send(
    engine: Engine,
    config: AlertConfig,
    rendered: Rendered,
    to: tuple[str, ...],
    keys: tuple[str, ...],
    pairs: list[tuple[str, str, str, str]],
    *,
    period: str,
    now: datetime,
) -> SentDigest:
    digest_id = uuid.uuid4().hex
    with engine.begin() as conn:
        store_alerts.record_attempt(
            conn, digest_id=digest_id, period=period, channel=config.channel, recipients=to,
            subject=rendered.subject, items=pairs, now=now,
        )
    msg = build_message(rendered, sender=config.sender, recipients=to, now=now)
    try:
        refused = deliver(msg, config, to)
    except Exception as exc:
        error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        with engine.begin() as conn:
            store_alerts.finish_digest(conn, digest_id, now=now, error=error)
        if not isinstance(exc, DeliveryError):
            raise
        log.error("digest %s to %s failed: %s", digest_id, ", ".join(to), error)
        return SentDigest(digest_id, to, rendered.subject, "failed", keys, error=error, rendered=rendered)
    with engine.begin() as conn:
        store_alerts.finish_digest(conn, digest_id, now=now, refused=refused)
    if refused and len(refused) == len(to):
        return SentDigest(digest_id, to, rendered.subject, "failed", keys, error="every recipient refused",
                          refused=tuple(refused), rendered=rendered)
    log.info("digest %s sent to %s: %s", digest_id, ", ".join(to), rendered.subject)
    return SentDigest(digest_id, to, rendered.subject, "sent", keys, refused=tuple(refused), rendered=rendered)


def _write_out(
    result: DigestResult, settings: Settings, engine: Engine, config: AlertConfig, *, period: str, start: datetime, now: datetime
) -> None:
    """Write the first message's HTML (or, with nothing to send, the all-clear view) to ``out``."""
    assert result.out is not None
    rendered = next((d.rendered for d in result.digests if d.rendered is not None), None)
    if rendered is None:
        with engine.connect() as conn:
            ctx = build_context(conn, settings=settings, config=config, period=period, start=start, end=now, now=now)
        rendered = render_digest([], ctx, all_clear=True)
    html = rendered.html
    # A file on disk cannot resolve cid: images; inline them as data: URIs for the preview only.
    import base64

    for cid, data in rendered.images.items():
        html = html.replace(f"cid:{cid}", "data:image/png;base64," + base64.b64encode(data).decode("ascii"))
    result.out.parent.mkdir(parents=True, exist_ok=True)
    result.out.write_text(html, encoding="utf-8")

"""One digest pass, as a recipe: fetch, filter, look up what was sent, suppress, format, send, mark sent.

``run_digest(settings, engine, period=..., now=...)`` takes the rules whose frequency is
``period`` and for each recipient:

1. **fetch** every item the rules find (``alerts.collect``); failed runs over the period, widened
   back to cover items of an earlier failed send;
2. **filter** by the rule's pipelines (acknowledged and snoozed anomalies never come back from
   the store read);
3. **look up** what this rule already told this recipient (``notifications``): an item at a
   version already sent is not sent again; nor, in a daily or weekly digest, an item an
   immediate rule already sent to this recipient at that version (the alert came between digests);
4. **suppress** an item whose earlier version was sent less than the suppression interval ago,
   unless it got worse (higher severity) or was reopened;
5. **format** one message per group of recipients with the same new items (``alerts.render``);
   email recipients share a message, each Slack or webhook recipient (``"slack:<name>"``,
   ``[notify.<name>]``) gets its own;
6. **send** it (``alerts.send`` by email, ``alerts.notify`` to Slack or a webhook, retried),
   having recorded it as pending;
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
from sqlalchemy.engine import Connection, Engine

from alerts import notify
from alerts.collect import Context, Item, build_context, fetch_items, severity_rank
from alerts.render import Rendered, render_digest
from alerts.rules import FREQUENCIES, AlertConfig, Rule, load_alert_config
from alerts.send import build_message, deliver
from pipepulse.errors import DeliveryError, InputError
from pipepulse.files import write_private
from pipepulse.settings import NotifyTarget, Settings
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
    channel: str = "email"  # email, or the Slack/webhook recipient ("slack:oncall")
    attempts: int = 1  # HTTP tries a Slack/webhook message took (retries are visible here)


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
    items: Sequence[Item], rule: Rule, recipient: str, state: pd.DataFrame, config: AlertConfig, now: datetime,
    immediate: Sequence[str] = (),
) -> tuple[list[Item], list[Item], int, set[str]]:
    """(to send, already told, suppressed count, keys sent because they got worse) for one rule
    and recipient; ``immediate`` names the immediate rules whose sends count as told."""
    rows = state[(state["rule"] == rule.name) & (state["recipient"] == recipient)] if not state.empty else state
    alerted = set()
    if immediate and not state.empty:
        sent_now = state[state["rule"].isin(list(immediate)) & (state["recipient"] == recipient) & (state["status"] == "sent")]
        alerted = set(zip(sent_now["item_key"], sent_now["item_version"], strict=True))
    by_key: dict[str, list] = defaultdict(list)
    for r in rows.itertuples(index=False):
        by_key[r.item_key].append(r)  # newest first
    send, told, held, worse_keys = [], [], 0, set()
    window = config.suppression_for(rule)
    for it in items:
        past = by_key.get(it.key, [])
        if (it.key, it.version) in alerted or any(p.item_version == it.version and p.status == "sent" for p in past):
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
    """The recipe (module docstring): fetch, filter, look up, suppress, format, send, mark."""
    start = now - PERIOD_LENGTH[period]
    recipients = sorted({r for rule in rules for r in rule.recipients})
    names = [r.name for r in rules]
    # a digest does not repeat what an immediate alert already told the same recipient
    immediate = [r.name for r in config.rules_for("immediate")] if period != "immediate" else []
    with engine.connect() as conn:
        items = fetch_items(conn, rules, settings=settings, config=config, start=_fetch_start(conn, names, period, now),
                            end=now, now=now)
        sent = store_alerts.notification_state(conn, [*names, *immediate, ALL_CLEAR_RULE], recipients)
        messages = _plan(items, rules, recipients, sent, config, result, period=period, now=now, immediate=immediate)
        contexts = {
            filters: build_context(conn, settings=settings, config=config, period=period, start=start, end=now,
                                   now=now, pipelines=filters or None)
            for filters in dict.fromkeys(m.filters for m in messages)
        }
    for m in messages:
        rendered = _format(m, contexts[m.filters])
        to, keys = tuple(m.recipients), tuple(sorted(i.key for i in m.items))
        if dry_run:
            result.digests.append(SentDigest(None, to, rendered.subject, "dry-run", keys, rendered=rendered))
        else:
            target = notify.target_for(to[0], settings)
            if target is None:
                result.digests.append(_send(engine, config, rendered, to, keys, m.pairs, period=period, now=now))
            else:
                result.digests.append(_send_chat(engine, settings, config, target, m, rendered, keys, period=period, now=now))
    if result.out is not None:
        _write_out(result, settings, engine, config, period=period, start=start, now=now)


@dataclass
class _Message:
    """One message of a pass: its recipients (who share the same new items), the items, the
    (rule, recipient, item key, version) pairs it marks sent, and what its render needs."""

    filters: tuple[str, ...]  # pipelines every rule of its recipients is scoped to; () = all
    items: list[Item]
    still_open: list[Item]  # anomalies told before and still open
    escalated: set[str]  # item keys sent again because they got worse
    all_clear: bool
    recipients: list[str] = field(default_factory=list)
    rules: set[str] = field(default_factory=set)
    pairs: list[tuple[str, str, str, str]] = field(default_factory=list)


def _fetch_start(conn: Connection, names: list[str], period: str, now: datetime) -> datetime:
    """The period, widened back to cover the items of an earlier send that failed."""
    length = PERIOD_LENGTH[period]
    oldest = store_alerts.oldest_unsent(conn, names)
    if oldest is None:
        return now - length
    return min(now - length, max(oldest - length, now - MAX_LOOKBACK))


def _plan(
    items: Sequence[Item], rules: Sequence[Rule], recipients: list[str], sent: pd.DataFrame, config: AlertConfig,
    result: DigestResult, *, period: str, now: datetime, immediate: Sequence[str] = (),
) -> list[_Message]:
    """Per recipient, the items to send (filtered, not sent before, not suppressed); recipients
    with the same items, scope and still-open anomalies share one message."""
    messages: dict[tuple, _Message] = {}
    for recipient in recipients:
        mine = [r for r in rules if recipient in r.recipients]
        chosen, still_open, escalated = _choose(items, mine, recipient, sent, config, result, now, immediate)
        all_clear = not chosen
        if all_clear and not _all_clear_due(config, sent, recipient, period, now):
            continue
        result.new_items += sum(len(r) for _, r in chosen.values())
        for k in chosen:
            still_open.pop(k, None)
        filters = tuple(sorted({p for r in mine for p in r.pipelines})) if all(r.pipelines for r in mine) else ()
        channel = recipient if notify.is_chat(recipient) else "email"
        key = (tuple(sorted((it.key, it.version) for it, _ in chosen.values())), filters, tuple(sorted(still_open)),
               all_clear, tuple(sorted(escalated)), channel)
        m = messages.setdefault(key, _Message(filters, [i for i, _ in chosen.values()], list(still_open.values()),
                                              escalated, all_clear))
        m.recipients.append(recipient)
        m.rules.update(r.name for r in mine)
        m.pairs += [(name, recipient, it.key, it.version) for it, rule_names in chosen.values() for name in rule_names]
        if all_clear:
            m.pairs.append((ALL_CLEAR_RULE, recipient, _all_clear_key(period, now), "1|low"))
    return list(messages.values())


def _choose(
    items: Sequence[Item], mine: Sequence[Rule], recipient: str, sent: pd.DataFrame, config: AlertConfig,
    result: DigestResult, now: datetime, immediate: Sequence[str] = (),
) -> tuple[dict[str, tuple[Item, list[str]]], dict[str, Item], set[str]]:
    """Filter each rule's items to its pipelines, then ``_decide`` what to send: returns
    {item key: (item, the rules that chose it)}, the anomalies already told, the escalated keys."""
    chosen: dict[str, tuple[Item, list[str]]] = {}
    still_open: dict[str, Item] = {}
    escalated: set[str] = set()
    for rule in mine:
        rule_items = [i for i in items if i.rule == rule.name and rule.covers(i.pipeline)]
        send, told, held, worse = _decide(rule_items, rule, recipient, sent, config, now, immediate)
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
    return chosen, still_open, escalated


def _all_clear_key(period: str, now: datetime) -> str:
    return f"all-clear:{period}:{_window_key(period, now)}"


def _all_clear_due(config: AlertConfig, sent: pd.DataFrame, recipient: str, period: str, now: datetime) -> bool:
    """An all-clear goes out when configured, once per period and day (never for immediate rules)."""
    if not config.send_all_clear or period == "immediate":
        return False
    if sent.empty:
        return True
    told = ((sent["rule"] == ALL_CLEAR_RULE) & (sent["recipient"] == recipient)
            & (sent["item_key"] == _all_clear_key(period, now)) & (sent["status"] == "sent"))
    return not told.any()


def _format(m: _Message, ctx: Context) -> Rendered:
    ctx = Context(**{**ctx.__dict__, "still_open": m.still_open, "escalated": m.escalated})
    return render_digest(m.items, ctx, rules=sorted(m.rules), all_clear=m.all_clear)


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


def _send_chat(
    engine: Engine,
    settings: Settings,
    config: AlertConfig,
    target: NotifyTarget,
    m: _Message,
    rendered: Rendered,
    keys: tuple[str, ...],
    *,
    period: str,
    now: datetime,
) -> SentDigest:
    """The recipe's send and mark steps for one Slack or webhook recipient (``alerts.notify``)."""
    digest_id = uuid.uuid4().hex
    to = (target.address,)
    with engine.begin() as conn:
        store_alerts.record_attempt(
            conn, digest_id=digest_id, period=period, channel=target.kind, recipients=to,
            subject=rendered.subject, items=m.pairs, now=now,
        )
    items = sorted(m.items, key=lambda i: i.sort_key)
    if target.kind == "slack":
        payload = notify.slack_payload(rendered.subject, items, dashboard_url=config.dashboard_url, still_open=m.still_open)
    else:
        payload = notify.webhook_payload(rendered.subject, items, delivery=digest_id, period=period, now=now,
                                         dashboard_url=config.dashboard_url, still_open=m.still_open)
    try:
        posted = notify.post(target, payload, settings, delivery=digest_id)
    except DeliveryError as exc:
        with engine.begin() as conn:
            store_alerts.finish_digest(conn, digest_id, now=now, error=str(exc), attempts=target.attempts)
        log.error("digest %s to %s failed: %s", digest_id, target.address, exc)
        return SentDigest(digest_id, to, rendered.subject, "failed", keys, error=str(exc), rendered=rendered,
                          channel=target.address, attempts=target.attempts)
    with engine.begin() as conn:
        store_alerts.finish_digest(conn, digest_id, now=now, attempts=posted.attempts)
    log.info("digest %s sent to %s in %d attempt(s): %s", digest_id, target.address, posted.attempts, rendered.subject)
    return SentDigest(digest_id, to, rendered.subject, "sent", keys, rendered=rendered, channel=target.address,
                      attempts=posted.attempts)


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
    write_private(result.out, html, what="digest preview")

"""Turn a digest's items and context into a subject, an HTML part, a plain-text part and a chart.

Layout, most urgent first: a one-line summary, then sections ordered by their worst severity
(failures, late or missed runs, success rates, anomalies, budget, collectors; ties keep that
order), then spend against forecast and budget with a 14-day sparkline, then the period's runs per
pipeline. Every string that comes from data (pipeline names, errors, subjects) goes through
``html.escape``; every link points at the dashboard (see ``alerts.links``).

The HTML is table-free except for data tables and uses inline styles only, because email
clients strip ``<style>`` blocks and external CSS.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alerts import links
from alerts.chart import spend_sparkline
from alerts.collect import Context, Item, Spend, severity_rank
from alerts.fmt import money, when

__all__ = ["SPARKLINE_CID", "Rendered", "render_digest", "subject_line"]

SPARKLINE_CID = "spend-sparkline@pipepulse"
ERROR_CHARS = 600  # longer errors are cut; the run page has the rest
PER_SECTION = 10  # items shown per section; the rest are counted with a link
PER_PIPELINE = 3  # failed runs shown per pipeline
NON_NEGATIVE = frozenset({"cost", "duration", "throughput", "failure_rate", "rejected_rate"})  # anomaly kinds never below 0

SECTIONS = (
    ("failed_runs", "Failed runs"),
    ("freshness", "Late or missed runs"),
    ("success_rate", "Success rate below target"),
    ("anomalies", "Anomalies"),
    ("budget", "Budget"),
    ("collector_failing", "Collectors failing"),
)
SEVERITY_COLORS = {"critical": "#9b1c1c", "high": "#c2410c", "medium": "#a16207", "low": "#4b5563"}
# No quotes: the font list sits inside single-quoted style attributes.
FONT = "-apple-system,BlinkMacSystemFont,Segoe UI,Roboto,Helvetica,Arial,sans-serif"


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    images: dict[str, bytes] = field(default_factory=dict)  # Content-ID -> PNG


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


_money = money
_when = when


def _value(kind: str, v: float | None, currency: str) -> str:
    if v is None:
        return "n/a"
    if kind == "cost":
        return _money(v, currency)
    if kind == "duration":
        return f"{v / 60:.1f} min" if v >= 120 else f"{v:.0f} s"
    if kind in ("failure_rate", "rejected_rate"):
        return f"{v:.0%}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _cause(c: dict, currency: str, *, name: bool = True) -> str:
    """``usage type USE1-Requests-Tier1 +$27.90 ($3.10 → $31.00)`` (without the name for HTML)."""
    parts = [f"{c['dimension'].replace('_', ' ')} {c['value']}"] if name else []
    if c.get("impact") is not None:
        parts.append(("+" if c["impact"] > 0 else "") + _money(c["impact"], currency))
    if c.get("observed") is not None and c.get("expected") is not None:
        parts.append(f"({_money(c['expected'], currency)} → {_money(c['observed'], currency)})")
    return " ".join(parts)


def _num(v: object) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _change(observed: float | None, expected: float | None) -> str:
    if observed is None or expected is None or expected == 0:
        return ""
    return f"{(observed - expected) / abs(expected):+.0%}"


# ---- counts and subject ---------------------------------------------------------------------------


def _counts(items: Sequence[Item]) -> dict[str, int]:
    c = {k: 0 for k, _ in SECTIONS}
    c["late"] = c["missed"] = 0
    for it in items:
        c[it.kind] = c.get(it.kind, 0) + 1
        if it.kind == "freshness":
            c["missed" if it.fields.get("state") == "missed" else "late"] += 1
    return c


def _earlier(it: Item, context: Context) -> bool:
    """An anomaly from before this period (its window ended before the period began), neither
    reopened nor escalated since: told in the compact "still open" list, not as news."""
    if it.kind != "anomalies" or it.key in context.escalated:
        return False
    end = it.fields.get("window_end")
    if end is None or end >= context.start:
        return False
    return not (it.reopened_at is not None and it.reopened_at >= context.start)


def split_items(items: Sequence[Item], context: Context) -> tuple[list[Item], list[Item]]:
    """(news, older anomalies not reported before) for ``context``'s period."""
    news = [i for i in items if not _earlier(i, context)]
    older = [i for i in items if _earlier(i, context)]
    return news, older


def subject_line(period: str, items: Sequence[Item], context: Context) -> str:
    """``pipepulse daily: 3 failures, 1 late, 2 anomalies, spend on track``."""
    items, older = split_items(items, context)
    c = _counts(items)
    parts = []
    if c["failed_runs"]:
        parts.append(_plural(c["failed_runs"], "failure"))
    if c["missed"]:
        parts.append(f"{c['missed']} missed")
    if c["late"]:
        parts.append(f"{c['late']} late")
    if c["success_rate"]:
        parts.append(f"{c['success_rate']} below success target")
    if c["anomalies"]:
        parts.append(_plural(c["anomalies"], "anomaly", "anomalies"))
    if c["collector_failing"]:
        parts.append(_plural(c["collector_failing"], "collector") + " failing")
    if older:
        parts.append(f"{len(older)} older {'anomaly' if len(older) == 1 else 'anomalies'} open")
    spend = context.spend
    if spend.spent_over_by is not None:
        parts.append(f"spend already {spend.spent_over_by:.0%} over budget")
    elif spend.status == "forecast over budget" and spend.over_by is not None:
        parts.append(f"spend forecast {spend.over_by:.0%} over budget")
    elif spend.status == "on track":
        parts.append("spend on track")
    elif c["budget"]:
        parts.append(_plural(c["budget"], "budget") + " at risk")
    if not any(c[k] for k, _ in SECTIONS) and not older:
        parts.insert(0, "all clear")
    label = "alert" if period == "immediate" else period  # immediate rules send as soon as something happens
    return f"pipepulse {label}: " + ", ".join(parts)


# ---- sections ----------------------------------------------------------------------------------


def _chip(severity: str) -> str:
    color = SEVERITY_COLORS.get(severity, "#4b5563")
    return (
        f'<span style="display:inline-block;padding:1px 7px;border-radius:9px;font-size:11px;'
        f'font-weight:600;color:#fff;background:{color};text-transform:uppercase">{_e(severity)}</span>'
    )


def _a(href: str, label: str) -> str:
    return f'<a href="{_e(href)}" style="color:#1d4ed8;text-decoration:none">{_e(label)}</a>'


def _item_html(it: Item, currency: str) -> tuple[str, str]:
    """(HTML block, plain-text block) for one item."""
    f = it.fields
    if it.kind == "failed_runs":
        err = str(f.get("error", ""))
        cut = err if len(err) <= ERROR_CHARS else err[:ERROR_CHARS] + "…"
        head = f"<b>{_e(it.pipeline)}</b> {_chip(it.severity)} run {_e(str(f['status']).replace('_', ' ').lower())} at {_e(_when(it.at))}"
        meta = f"attempt {f.get('attempt')} · trigger {_e(f.get('trigger'))} · run {_e(f.get('run_id'))}"
        body = (
            f'<div style="font-family:Menlo,Consolas,monospace;font-size:12px;background:#fef2f2;'
            f'border-left:3px solid #dc2626;padding:6px 8px;margin:4px 0;white-space:pre-wrap;'
            f'word-break:break-word">{_e(cut)}</div>'
        )
        h = f"{head}<div style='color:#6b7280;font-size:12px'>{meta}</div>{body}{_a(it.link, 'Open the run →')}"
        t = (
            f"- {it.pipeline}: run {str(f['status']).replace('_', ' ').lower()} at {_when(it.at)} (attempt {f.get('attempt')}, "
            f"{f.get('trigger')})\n  {cut}\n  {it.link}"
        )
        return h, t
    if it.kind == "freshness":
        state = str(f.get("state", "late"))
        detail = str(f.get("detail") or "")
        meta = [f"expected {_when(f['expected_at'])}"] if f.get("expected_at") else []
        if f.get("last_success_at"):
            meta.append(f"last success {_when(f['last_success_at'])}")
        if f.get("owner"):
            meta.append(f"owner {f['owner']}")
        h = (
            f"<b>{_e(it.pipeline)}</b> {_chip(it.severity)} <b>{_e(state)}</b>: {_e(detail)}"
            f"<div style='color:#6b7280;font-size:12px'>{_e(' · '.join(meta))}</div>"
            f"{_a(it.link, 'Open the pipeline →')}"
        )
        t = f"- {it.pipeline}: {state}: {detail}" + (f" ({'; '.join(meta)})" if meta else "") + f"\n  {it.link}"
        return h, t
    if it.kind == "success_rate":
        h = (
            f"<b>{_e(it.pipeline)}</b> {_chip(it.severity)} {f['rate']:.0%} succeeded "
            f"({f['succeeded']} of {f['finished']} finished runs in the last {f['window_hours']:g} h; "
            f"target {f['threshold']:.0%})<br>{_a(it.link, 'Open the pipeline →')}"
        )
        t = (
            f"- {it.pipeline}: {f['rate']:.0%} succeeded ({f['succeeded']} of {f['finished']} in "
            f"{f['window_hours']:g} h; target {f['threshold']:.0%})\n  {it.link}"
        )
        return h, t
    if it.kind == "anomalies":
        kind = str(f.get("anomaly_kind", ""))
        obs = _value(kind, f.get("observed"), currency)
        exp = _value(kind, f.get("expected"), currency)
        change = _change(f.get("observed"), f.get("expected"))
        band = ""
        if f.get("lower") is not None and f.get("upper") is not None:
            lower = f["lower"]
            if kind in NON_NEGATIVE:
                lower = max(lower, 0.0)  # a band below zero reads as nonsense for these
            band = f" (normal {_value(kind, lower, currency)}–{_value(kind, f['upper'], currency)})"
        causes = f.get("root_cause") or []
        cause_t = "; ".join(_cause(c, currency) for c in causes[:3])
        cause_h = ""
        if causes:
            lis = "".join(
                f"<li>{_e(c['dimension'].replace('_', ' '))} <b>{_e(c['value'])}</b> {_e(_cause(c, currency, name=False))}</li>"
                for c in causes[:3]
            )
            cause_h = f"<div style='font-size:12px;color:#374151'>Root cause:<ul style='margin:2px 0 0 18px;padding:0'>{lis}</ul></div>"
        window = f"{_when(f.get('window_start'))} – {_when(f.get('window_end'))}"
        h = (
            f"<b>{_e(it.title)}</b> {_chip(it.severity)}"
            f"<div>observed <b>{_e(obs)}</b> vs expected {_e(exp)}{_e(band)} <b>{_e(change)}</b></div>"
            f"<div style='color:#6b7280;font-size:12px'>{_e(kind)} · {_e(window)}"
            f"{' · ' + _e(it.pipeline) if it.pipeline else ''}</div>{cause_h}{_a(it.link, 'Acknowledge or snooze →')}"
        )
        t = f"- [{it.severity}] {it.title}: observed {obs} vs expected {exp}{band} {change}".rstrip()
        if cause_t:
            t += f"\n  root cause: {cause_t}"
        t += f"\n  {it.link}"
        return h, t
    if it.kind == "budget":
        rng = ""
        if f.get("lower") is not None and f.get("upper") is not None:
            rng = f" (80% range {_money(f['lower'], currency)}–{_money(f['upper'], currency)})"
        cross = f" Crosses the budget on {f['cross_day']}." if f.get("cross_day") else ""
        h = (
            f"{_chip(it.severity)} {_e(it.title)}{_e(rng)}.{_e(cross)}<br>{_a(it.link, 'Open costs →')}"
        )
        t = f"- [{it.severity}] {it.title}{rng}.{cross}\n  {it.link}"
        return h, t
    # collector_failing
    n = int(f.get("failures", 0))
    h = (
        f"<b>{_e(f.get('source'))}</b> {_chip(it.severity)} {n} failed pass{'es' if n != 1 else ''} in a row, "
        f"failing since {_e(_when(f.get('failing_since')))}"
        f"<div style='font-family:Menlo,Consolas,monospace;font-size:12px;color:#7f1d1d'>{_e(f.get('error'))}</div>"
        f"{_a(it.link, 'Open collectors →')}"
    )
    t = f"- {it.title}, failing since {_when(f.get('failing_since'))}: {f.get('error')}\n  {it.link}"
    return h, t


def _trim(kind: str, group: list[Item], context: Context) -> tuple[list[Item], list[tuple[str, str]]]:
    """The items a section shows, and ``(label, link)`` lines for the rest.

    A pipeline failing every run must not bury everything else: at most ``PER_PIPELINE`` failures
    per pipeline (the newest), and at most ``PER_SECTION`` items in any section (most urgent
    first); the rest are counted, with a link to the dashboard view that lists them.
    """
    base, to, rng = context.dashboard_url, context.to, context.range_key
    more: list[tuple[str, str]] = []
    shown = group
    if kind == "failed_runs":
        seen: dict[str, int] = {}
        kept, extra = [], {}
        for it in group:  # most urgent, then newest first
            p = it.pipeline or ""
            seen[p] = seen.get(p, 0) + 1
            if seen[p] <= PER_PIPELINE:
                kept.append(it)
            else:
                extra[p] = extra.get(p, 0) + 1
        shown = kept
        for p, n in extra.items():
            more.append((f"{_plural(n, 'more failed run')} of {p}", links.pipeline_link(base, p, range_key=rng, to=to)))
    if len(shown) > PER_SECTION:
        rest = len(shown) - PER_SECTION
        shown = shown[:PER_SECTION]
        section_link = {
            "anomalies": links.anomalies_link(base),
            "budget": context.spend.link,
            "collector_failing": links.collectors_link(base, range_key=rng, to=to),
        }.get(kind, links.overview_link(base, range_key=rng, to=to))
        more.append((f"{rest} more", section_link))
    return shown, more


def _section_order(items: Sequence[Item]) -> list[tuple[str, str, list[Item]]]:
    out = []
    for pos, (kind, title) in enumerate(SECTIONS):
        group = sorted((i for i in items if i.kind == kind), key=lambda i: i.sort_key)
        if group:
            out.append((pos, kind, title, group))
    out.sort(key=lambda s: (-max(severity_rank(i.severity) for i in s[3]), s[0]))
    return [(kind, title, group) for _, kind, title, group in out]


def _spend_html(context: Context) -> tuple[str, str, dict[str, bytes]]:
    s = context.spend
    cur = context.currency
    days_in_month = _days_in_month(s.month)
    pace = s.budget / days_in_month if s.budget else None
    values = [v for _, v in s.daily]
    images: dict[str, bytes] = {}
    img = ""
    if any(v > 0 for v in values):
        images[SPARKLINE_CID] = spend_sparkline(values, pace=pace)
        first, last = s.daily[0][0], s.daily[-1][0]
        img = (
            f'<div style="margin:8px 0 2px"><img src="cid:{SPARKLINE_CID}" width="280" height="56" '
            f'alt="Daily spend {first:%d %b} to {last:%d %b}" style="display:block;border:0"></div>'
            f"<div style='color:#6b7280;font-size:11px'>daily spend, {first:%d %b} – {last:%d %b}"
            f"{'; dashed: budget pace ' + _e(_money(pace, cur)) + '/day' if pace else ''}</div>"
        )
    status = _spend_verdict(s)
    color = {"over budget": "#b91c1c", "forecast over budget": "#b45309", "on track": "#15803d"}.get(s.status, "#4b5563")
    rng = ""
    if s.forecast_lower is not None and s.forecast_upper is not None:
        rng = f" <span style='color:#6b7280'>(80%: {_e(_money(s.forecast_lower, cur))}–{_e(_money(s.forecast_upper, cur))})</span>"
    rows = [
        ("Month to date", _e(_money(s.month_to_date, cur))),
        ("Forecast month end", f"<b>{_e(_money(s.forecast_mean, cur))}</b>{rng}"),
        ("Budget", _e(_money(s.budget, cur)) if s.budget else "not set"),
    ]
    cells = "".join(
        f"<tr><td style='padding:2px 12px 2px 0;color:#6b7280'>{k}</td><td style='padding:2px 0'>{v}</td></tr>" for k, v in rows
    )
    h = (
        f"<div style='font-size:15px'>Spend in {_e(_month_name(s.month))}: <b style='color:{color}'>{_e(status)}</b></div>"
        f"<table style='border-collapse:collapse;font-size:13px;margin-top:4px'>{cells}</table>{img}"
        f"<div style='margin-top:6px'>{_a(s.link, 'Open costs →')}</div>"
    )
    t = (
        f"Spend in {_month_name(s.month)}: {status}\n"
        f"  month to date {_money(s.month_to_date, cur)}; forecast month end {_money(s.forecast_mean, cur)}"
        + (f" (80%: {_money(s.forecast_lower, cur)}-{_money(s.forecast_upper, cur)})" if rng else "")
        + f"; budget {_money(s.budget, cur) if s.budget else 'not set'}\n  {s.link}"
    )
    return h, t, images


def _spend_verdict(s: Spend) -> str:
    """What is true of the month's spend: already past the budget, or only forecast to pass it."""
    if s.spent_over_by is not None:
        later = f"; forecast to end the month {s.over_by:.0%} over" if s.over_by is not None else ""
        return f"already {s.spent_over_by:.0%} over budget{later}"
    if s.status == "forecast over budget" and s.over_by is not None:
        return f"forecast to end the month {s.over_by:.0%} over budget"
    if s.status == "on track" and s.over_by is not None:
        under = f"{-s.over_by:.0%} under" if s.over_by < 0 else "at"
        return f"on track (forecast month end {under} budget)"
    return s.status


def _rightsizing_html(context: Context) -> tuple[str, str]:
    """Lambda functions with more memory than they use (weekly digests): an estimate, said plainly."""
    df = context.rightsizing
    if df is None or df.empty:
        return "", ""
    df = df[df["monthly_saving_usd"] > 0]
    if df.empty:
        return "", ""
    cur = context.currency
    total = float(df["monthly_saving_usd"].sum())
    note = ("Estimate: the saving if each function ran at the suggested size with the same billed durations, at "
            "list price; Lambda gives CPU in proportion to memory, so try the size before keeping it.")
    th = "padding:4px 8px;text-align:left;border-bottom:1px solid #e5e7eb;color:#6b7280;font-weight:600;font-size:12px"
    td = "padding:4px 8px;border-bottom:1px solid #f3f4f6;font-size:13px"
    head = "".join(f"<th style='{th}'>{c}</th>" for c in ("Function", "Memory", "Max used", "Suggested", "Saving/month"))
    body, lines = [], []
    for r in df.head(PER_SECTION).itertuples(index=False):
        saving = _money(r.monthly_saving_usd, cur)
        body.append(f"<tr><td style='{td}'>{_e(r.function_name)}</td><td style='{td}'>{int(r.memory_size_mb)} MB</td>"
                    f"<td style='{td}'>{int(r.max_memory_used_mb)} MB</td><td style='{td}'>{int(r.suggested_mb)} MB</td>"
                    f"<td style='{td}'>~{_e(saving)}</td></tr>")
        lines.append(f"  {r.function_name:<32} {int(r.memory_size_mb)} MB -> {int(r.suggested_mb)} MB "
                     f"(max used {int(r.max_memory_used_mb)} MB), about {saving}/month")
    h = (f"<div style='font-size:13px'>About <b>{_e(_money(total, cur))}</b> a month (estimate) across "
         f"{_plural(len(df), 'function')}.</div>"
         f"<table style='border-collapse:collapse;width:100%'><tr>{head}</tr>{''.join(body)}</table>"
         f"<div style='color:#6b7280;font-size:11px;margin-top:4px'>{_e(note)}</div>")
    t = (f"LAMBDA RIGHT-SIZING (ESTIMATE)\nAbout {_money(total, cur)} a month across {_plural(len(df), 'function')}.\n"
         + "\n".join(lines) + f"\n  {note}")
    return h, t


def _month_name(month: str) -> str:
    y, m = (int(x) for x in month.split("-"))
    return datetime(y, m, 1).strftime("%B %Y")


def _days_in_month(month: str) -> int:
    y, m = (int(x) for x in month.split("-"))
    nxt = datetime(y + (m == 12), m % 12 + 1, 1)
    return (nxt - datetime(y, m, 1)).days


def _runs_html(context: Context) -> tuple[str, str]:
    df = context.summary
    if df.empty:
        return "<div style='color:#6b7280'>No runs started in this period.</div>", "No runs started in this period."
    th = "padding:4px 8px;text-align:left;border-bottom:1px solid #e5e7eb;color:#6b7280;font-weight:600;font-size:12px"
    head = "".join(f"<th style='{th}'>{c}</th>" for c in ("Pipeline", "Runs", "Failed", "Success rate", "p95 duration"))
    body = []
    lines = []
    for r in df.itertuples(index=False):
        rate = r.success_rate
        rate_s = "n/a" if rate is None or (isinstance(rate, float) and math.isnan(rate)) else f"{rate:.1%}"
        red = "color:#b91c1c;font-weight:600" if r.failed else ""
        p95 = _value("duration", _num(getattr(r, "duration_p95", None)), context.currency)
        link = links.pipeline_link(context.dashboard_url, r.pipeline, range_key=context.range_key, to=context.to)
        td = "padding:4px 8px;border-bottom:1px solid #f3f4f6;font-size:13px"
        body.append(
            f"<tr><td style='{td}'>{_a(link, r.pipeline)}</td><td style='{td}'>{int(r.runs)}</td>"
            f"<td style='{td};{red}'>{int(r.failed)}</td><td style='{td}'>{rate_s}</td><td style='{td}'>{p95}</td></tr>"
        )
        lines.append(f"  {r.pipeline:<24} {int(r.runs):>5} runs {int(r.failed):>4} failed  {rate_s:>6}  p95 {p95}")
    h = f"<table style='border-collapse:collapse;width:100%'><tr>{head}</tr>{''.join(body)}</table>"
    return h, "\n".join(lines)


def render_digest(
    items: Sequence[Item], context: Context, *, rules: Sequence[str] = (), all_clear: bool = False
) -> Rendered:
    """The message for ``items`` (new since the last digest) in ``context``."""
    period = context.period
    subject = subject_line(period, items, context)
    span = f"{_when(context.start)} – {_when(context.end)}"
    sections_h: list[str] = []
    sections_t: list[str] = []
    h2 = "font-size:16px;margin:22px 0 8px;padding-bottom:4px;border-bottom:2px solid #e5e7eb"
    news, older = split_items(items, context)
    for kind, title, group in _section_order(news):
        shown, more = _trim(kind, group, context)
        blocks = [_item_html(i, context.currency) for i in shown]
        more_h = "".join(
            f"<div style='margin:0 0 14px;color:#374151'>…and {_e(label)}. {_a(link, 'See them all →')}</div>"
            for label, link in more
        )
        sections_h.append(
            f"<h2 style='{h2}'>{_e(title)} ({len(group)})</h2>"
            + "".join(f"<div style='margin:0 0 14px'>{bh}</div>" for bh, _ in blocks)
            + more_h
        )
        sections_t.append(
            f"{title.upper()} ({len(group)})\n"
            + "\n".join(bt for _, bt in blocks)
            + "".join(f"\n…and {label}: {link}" for label, link in more)
        )
    still = sorted(older, key=lambda i: i.sort_key) + sorted(context.still_open, key=lambda i: i.sort_key)
    if still:
        shown = still[:PER_SECTION * 2]
        lis = "".join(
            f"<li>{_a(i.link, i.title)} <span style='color:#6b7280'>({_e(i.severity)}, since "
            f"{_e(_when(i.fields.get('window_start') or i.fields.get('first_seen')))}"
            f"{'' if i in older else ', reported before'})</span></li>"
            for i in shown
        )
        rest = len(still) - len(shown)
        all_open = links.anomalies_link(context.dashboard_url)
        sections_h.append(
            f"<h2 style='{h2}'>Still open anomalies ({len(still)})</h2>"
            f"<div style='font-size:12px;color:#6b7280'>From before this period and not acknowledged yet.</div>"
            f"<ul style='margin:4px 0 0 18px;padding:0;font-size:13px'>{lis}</ul>"
            + (f"<div style='color:#374151'>…and {rest} more.</div>" if rest else "")
            + f"<div style='margin-top:6px'>{_a(all_open, 'Acknowledge or snooze them →')}</div>"
        )
        sections_t.append(
            f"STILL OPEN ANOMALIES ({len(still)})\n"
            + "\n".join(f"- {i.title} ({i.severity})\n  {i.link}" for i in shown)
            + (f"\n…and {rest} more: {all_open}" if rest else "")
        )
    spend_h, spend_t, images = _spend_html(context)
    runs_h, runs_t = _runs_html(context)
    sizing_h, sizing_t = _rightsizing_html(context)
    # older anomalies are listed under "Still open", not counted as new
    intro = "Nothing new needs your attention." if not news else f"{_plural(len(news), 'new item')}, most urgent first."
    if all_clear and not items:
        intro = "All clear: no new failures, late runs or anomalies in this period."
    overview = links.overview_link(context.dashboard_url, range_key=context.range_key, to=context.to)
    rules_note = f"Rules: {', '.join(rules)}. " if rules else ""
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>{_e(subject)}</title></head>"
        f"<body style='margin:0;padding:0;background:#f3f4f6'>"
        f"<div style='max-width:640px;margin:0 auto;padding:20px;background:#ffffff;font-family:{FONT};"
        f"color:#111827;font-size:14px;line-height:1.45'>"
        f"<div style='font-size:12px;color:#6b7280'>pipepulse {_e('alert' if period == 'immediate' else period + ' digest')} · {_e(span)}</div>"
        f"<h1 style='font-size:20px;margin:4px 0 6px'>{_e(subject.split(': ', 1)[1])}</h1>"
        f"<div style='color:#374151'>{_e(intro)} {_a(overview, 'Open the dashboard →')}</div>"
        + "".join(sections_h)
        + f"<h2 style='{h2}'>Spend</h2>{spend_h}"
        + (f"<h2 style='{h2}'>Lambda right-sizing</h2>{sizing_h}" if sizing_h else "")
        + f"<h2 style='{h2}'>Runs in this period</h2>{runs_h}"
        + f"<div style='margin-top:24px;font-size:11px;color:#9ca3af'>{_e(rules_note)}Each item is reported once "
        "until it changes; acknowledged and snoozed anomalies are left out. "
        f"{_a(links.anomalies_link(context.dashboard_url), 'Manage anomalies')}</div>"
        "</div></body></html>"
    )
    text = "\n\n".join(
        [
            f"{subject}\n{span}\n{intro}\n{overview}",
            *sections_t,
            spend_t,
            *([sizing_t] if sizing_t else []),
            f"RUNS IN THIS PERIOD\n{runs_t}",
            f"{rules_note}Each item is reported once until it changes; acknowledged and snoozed anomalies are left out.",
        ]
    )
    return Rendered(subject=subject, html=body, text=text + "\n", images=images)

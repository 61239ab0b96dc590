"""Lambda right-sizing: the memory size each function's REPORT lines suggest, and what it would save.

Input: one row per function and memory size (``store.invocations.function_usage``: columns
``function_name``, ``memory_size_mb``, ``invocations``, ``max_memory_used_mb``,
``billed_duration_ms``, ``last_at``) over a window of ``days`` days. Only the rows at each
function's current memory size (that of its latest invocation) count: an older size says
nothing about today's cost.

The suggestion is the highest memory any invocation used plus ``headroom`` (a fraction),
rounded up to whole MB and kept within Lambda's limits (128 to 10,240 MB, 1 MB steps); it is
never below what the function used. The monthly saving is the billed GB-seconds of the window,
scaled to 30 days, times the memory given back, at the list price per GB-second.

It is an ESTIMATE: it assumes durations stay the same at the new size. Lambda gives CPU in
proportion to memory, so a CPU-bound function may run longer (and cost more) with less memory;
try the size and compare before keeping it. Functions that already fit (the suggestion is not
below the current size) have a saving of 0; when the suggestion is above it, the function used
nearly all its memory and ``note`` says so.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["DEFAULT_HEADROOM", "MAX_MB", "MIN_MB", "MONTH_DAYS", "rightsize", "suggested_mb"]

MIN_MB = 128
MAX_MB = 10_240
DEFAULT_HEADROOM = 0.2  # 20 % above the highest memory used
MONTH_DAYS = 30.0

COLUMNS = ["function_name", "invocations", "memory_size_mb", "max_memory_used_mb", "suggested_mb",
           "monthly_cost_usd", "monthly_saving_usd", "note"]


def suggested_mb(max_used_mb: float, *, headroom: float = DEFAULT_HEADROOM) -> int:
    """The memory size for a function that used at most ``max_used_mb``: never below it."""
    want = math.ceil(max_used_mb * (1 + headroom))
    return int(min(MAX_MB, max(MIN_MB, want, math.ceil(max_used_mb))))


def rightsize(usage: pd.DataFrame, *, days: float, price_gb_second: float,
              headroom: float = DEFAULT_HEADROOM) -> pd.DataFrame:
    """One row per function: its current and suggested memory size and the monthly saving (estimate)."""
    if usage.empty or days <= 0:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for function, group in usage.groupby("function_name", sort=True):
        current = group.sort_values("last_at").iloc[-1]["memory_size_mb"]
        now = group[group["memory_size_mb"] == current]
        used = float(now["max_memory_used_mb"].max())
        suggested = suggested_mb(used, headroom=headroom)
        month = MONTH_DAYS / days
        gb_seconds = float(now["billed_duration_ms"].sum()) / 1000.0 * float(current) / 1024.0 * month
        cost = gb_seconds * price_gb_second
        saving = 0.0
        note = "fits"
        if suggested < current:
            saving = float(now["billed_duration_ms"].sum()) / 1000.0 * (float(current) - suggested) / 1024.0 * month \
                * price_gb_second
            note = f"uses at most {used:.0f} of {current:.0f} MB"
        elif suggested > current:
            note = f"used {used:.0f} of {current:.0f} MB: near its limit"
        rows.append({"function_name": function, "invocations": int(now["invocations"].sum()),
                     "memory_size_mb": int(current), "max_memory_used_mb": int(used), "suggested_mb": suggested,
                     "monthly_cost_usd": cost, "monthly_saving_usd": saving, "note": note})
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["monthly_saving_usd", "function_name"], ascending=[False, True]).reset_index(drop=True)

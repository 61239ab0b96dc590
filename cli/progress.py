"""A progress bar for long work, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def progress(items: Iterable[T], *, total: int | None = None, label: str = "", stream=None) -> Iterator[T]:
    """Yield ``items``, redrawing ``label [#####.....] n/total`` at most 10 times a second."""
    stream = stream or sys.stderr
    stream = getattr(stream, "raw", stream)  # the bar's own \r redraws; its text is ours
    if not getattr(stream, "isatty", lambda: False)():
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    last = 0.0
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        t = time.monotonic()
        if t - last > 0.1 or n == total:
            last = t
            if total:
                filled = int(30 * n / total)
                stream.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {n}/{total}")
            else:
                stream.write(f"\r{label} {n}")
            stream.flush()
    stream.write("\n")

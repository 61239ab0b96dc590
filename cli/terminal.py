"""What the CLI writes for people goes through ``SafeText``: stdout and stderr wrapped so that
escape sequences and control characters in text pipepulse prints (names, errors and regions from
cost exports, AWS answers, stored rows) never reach the terminal (``pipepulse.redact``).

``cli.main`` wraps both streams for the duration of a command. The progress bar (``cli/progress.py``)
redraws its line with ``\\r`` and writes through ``raw``; nothing else needs the raw stream.
"""

from __future__ import annotations

from typing import IO

from pipepulse.redact import terminal_text

__all__ = ["SafeText"]


class SafeText:
    """A text stream that writes ``terminal_text(s)`` to ``raw``; everything else is ``raw``'s."""

    def __init__(self, raw: IO[str]) -> None:
        self.raw = raw

    def write(self, s: str) -> int:
        self.raw.write(terminal_text(s))
        return len(s)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self.raw, name)

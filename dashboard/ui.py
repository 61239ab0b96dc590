"""Small page helpers: tables that can be downloaded as CSV, empty states that say what to run,
and text that is always shown as text (never Markdown or HTML)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pandas as pd
import streamlit as st

__all__ = ["empty", "esc", "run_link", "table"]

_MD = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def esc(value: object) -> str:
    """``value`` with Markdown (and HTML) special characters escaped, for labels and captions."""
    return _MD.sub(r"\\\1", "" if value is None else str(value))


def run_link(run_id: str) -> str:
    """The relative URL of a run's detail page."""
    return "run?run=" + quote(str(run_id), safe="")


def empty(what: str, *commands: str) -> None:
    """An empty state that says what is missing and which command(s) fill it."""
    run = " or ".join(f"`{c}`" for c in commands)
    st.info(f"{what}: run {run}", icon=":material/info:")


def table(
    frame: pd.DataFrame,
    *,
    key: str,
    filename: str,
    column_config: dict | None = None,
    height: int | str = "auto",
    hide: tuple[str, ...] = (),
) -> None:
    """A dataframe (text cells are drawn as text) with a button to download it as CSV."""
    shown = frame.drop(columns=[c for c in hide if c in frame.columns])
    if isinstance(height, int):
        height = min(height, 38 + 35 * max(len(frame), 1))  # no empty rows under a short table
    st.dataframe(shown, hide_index=True, column_config=column_config, height=height, width="stretch", key=f"df_{key}")
    st.download_button(
        "Download CSV",
        # made when clicked, not on every rerun
        data=lambda: frame.to_csv(index=False).encode(),
        file_name=filename,
        mime="text/csv",
        key=f"csv_{key}",
        icon=":material/download:",
        on_click="ignore",
    )

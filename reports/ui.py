"""Streamlit pieces every page shares: the store, friendly lock errors, run pickers that follow the URL's
query parameters (deep links), and tables with CSV / Parquet downloads. Layout only; no computing here."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from harness.errors import HarnessError
from harness.store import Store, is_busy
from harness.store import report_queries as q
from reports.colours import candidate_colours
from reports.export import csv_bytes, parquet_bytes

BUSY = ("The results store is busy: a run is writing to it right now. Nothing is lost; "
        "press **Try again** (or refresh) in a moment.")


def md_escape(text: str) -> str:
    """Text safe to put inside st.markdown: every Markdown and HTML special character backslash-escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~&$:=])", r"\\\1", str(text))


def get_store() -> Store:
    return Store(os.environ.get("HARNESS_DB") or None)


def is_lock_error(exc: Exception) -> bool:
    """Whether a store error means a run holds the store right now (harness.store.connection.is_busy)."""
    return is_busy(exc)


def render_page(body: Callable[[Store], None]) -> None:
    """Run a page body; a store held by a writing run becomes a friendly retry message, never a traceback."""
    try:
        body(get_store())
    except Exception as exc:
        if is_lock_error(exc):
            st.warning(BUSY, icon="⏳")
            st.button("Try again", key="_retry_busy_store")
        elif isinstance(exc, HarnessError):
            st.error(md_escape(str(exc)))
        else:
            raise


def colours(store: Store) -> dict[str, str]:
    return candidate_colours(q.candidate_names(store))


def _from_query(key: str, param: str, options: Sequence[str], default, multi: bool) -> None:
    """Seed a widget's state from the URL the first time the page runs (the deep link)."""
    current = st.session_state.get(key)
    if multi:
        wanted = [v for v in st.query_params.get_all(param) if v in options]
        valid = current is not None and all(v in options for v in current)
    else:
        wanted = st.query_params.get(param)
        wanted = wanted if wanted in options else None
        valid = current in options
    if key not in st.session_state or not valid:
        st.session_state[key] = wanted or default


def select(label: str, options: Sequence[str], key: str, param: str, default=None, container=st,
           format_func: Callable = str, **kwargs) -> str | None:
    """A selectbox whose value follows (and is written back to) the query parameter `param`."""
    options = list(options)
    if not options:
        return None
    _from_query(key, param, options, default if default in options else options[0], multi=False)
    value = container.selectbox(label, options, key=key, format_func=format_func, **kwargs)
    set_query(param, value)
    return value


def multiselect(label: str, options: Sequence[str], key: str, param: str, default: list[str], container=st,
                **kwargs) -> list[str]:
    options = list(options)
    _from_query(key, param, options, [d for d in default if d in options], multi=True)
    value = container.multiselect(label, options, key=key, **kwargs)
    set_query(param, value)
    return value


def set_query(param: str, value) -> None:
    if value in (None, "", []):
        st.query_params.pop(param, None)
    elif st.query_params.get_all(param) != (value if isinstance(value, list) else [value]):
        st.query_params[param] = value


def pick_runs(store: Store, key: str, multi: bool = True, container=st) -> list[str]:
    """Runs chosen on this page (default: the newest); stops the page with a hint when there are none."""
    run_ids = list(q.runs(store)["run_id"])
    if not run_ids:
        st.info(f"No runs in {md_escape(store.path)} yet. Start one with `harness run experiment.yaml --db PATH` "
                "(or `harness demo --db PATH`); results appear here as they are written.")
        st.stop()
    if multi:
        return multiselect("Runs", run_ids, key, "run", [run_ids[0]], container=container)
    return [select("Run", run_ids, key, "run", run_ids[0], container=container)]


def table(frame: pd.DataFrame, name: str, key: str, **kwargs) -> None:
    """A frame as a plain-text table (never HTML) with CSV and Parquet downloads under it."""
    st.dataframe(frame, hide_index=True, **kwargs)
    downloads(frame, name, key)


def downloads(frame: pd.DataFrame, name: str, key: str) -> None:
    left, right, _ = st.columns([1, 1, 6])
    left.download_button("CSV", csv_bytes(frame), f"{name}.csv", "text/csv", key=f"{key}_csv", on_click="ignore")
    right.download_button("Parquet", parquet_bytes(frame), f"{name}.parquet", "application/vnd.apache.parquet",
                          key=f"{key}_parquet", on_click="ignore")

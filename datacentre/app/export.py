"""The export page's parts: :func:`export_file` and :func:`export_command` make the
download and its command-line equivalent from one :class:`ExportSelection`.
"""
from __future__ import annotations

import io
import os
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import BinaryIO

import pandas as pd
import streamlit as st

from datacentre.app import ui
from datacentre.core.ticks import TICK_FIELDS, format_ts, parse_ts
from datacentre.store.csvio import export_csv, select_symbols
from datacentre.store.tickstore import TickStore

EXPORT_TTL_S = 10.0
PREVIEW_ROWS = 12
PREVIEW_SPANS = (timedelta(minutes=2), timedelta(hours=1), None)
KIND_ORDER = {"INDEX": 0, "FUT": 1, "CE": 2, "PE": 2}


@dataclass(frozen=True)
class ExportSelection:
    """What the export page downloads; :func:`export_command` says the same on the CLI.

    ``symbols`` set: those symbols (``--symbol``); else all of ``underlying`` or of one
    ``expiry`` (``--underlying``/``--expiry``). Times are store text, both inclusive.
    """

    db_url: str
    start_ts: str
    end_ts: str
    underlying: str | None = None
    expiry: str | None = None  # ISO date, with underlying
    symbols: tuple[str, ...] = ()

    def resolved_symbols(self, store: TickStore) -> list[str] | None:
        """The symbol list as ``python -m datacentre export`` resolves it (None: every symbol)."""
        symbols = list(self.symbols)
        if self.underlying:
            symbols += select_symbols(store, self.underlying, self.expiry)
        return symbols or None

    def file_name(self) -> str:
        what = (self.symbols[0].replace(" ", "_") if len(self.symbols) == 1
                else f"{len(self.symbols)}_symbols" if self.symbols
                else f"{self.underlying}_{self.expiry}" if self.expiry else str(self.underlying))
        # In UTC, as the file's ts column is: a name in IST beside UTC times misleads.
        start, end = parse_ts(self.start_ts), parse_ts(self.end_ts)
        return f"ticks_{what}_{start:%Y%m%d_%H%M}-{end:%H%M}_UTC.csv"


@st.cache_data(ttl=EXPORT_TTL_S, show_spinner=False)
def _instruments(db_url: str, base: str) -> list[dict]:
    return ui.get_store(db_url).instruments(base)


def export_symbols(ctx: ui.Context) -> list[str]:
    """The selected underlying's stored symbols for a picker: index, futures, then
    options by expiry and strike, call before put."""
    rows = _instruments(ctx.settings.db_url, ctx.underlying)
    return [r["symbol"] for r in sorted(rows, key=lambda r: (KIND_ORDER.get(r["kind"], len(KIND_ORDER)),
                                                             r["expiry"] or "", r["strike"] or 0, r["kind"]))]


@st.cache_data(ttl=EXPORT_TTL_S, show_spinner=False)
def export_size(selection: ExportSelection) -> tuple[int, int]:
    """``(rows, symbols)`` the selection exports (counting takes a while: cached briefly)."""
    store = ui.get_store(selection.db_url)
    symbols = selection.resolved_symbols(store)
    return store.count(symbols, selection.start_ts, selection.end_ts), len(symbols or [])


def export_preview(store: TickStore, selection: ExportSelection) -> pd.DataFrame:
    """The file's first :data:`PREVIEW_ROWS` rows.

    The store sorts the whole range by (ts, symbol) before the first row comes out, so
    the range's first minutes are read first: when they hold enough rows, those are
    the file's first rows too.
    """
    symbols = selection.resolved_symbols(store)
    start, end = parse_ts(selection.start_ts), parse_ts(selection.end_ts)
    for span in PREVIEW_SPANS:
        stop = selection.end_ts if span is None or start + span >= end else format_ts(start + span)
        ticks = store.iter_ticks(symbols, selection.start_ts, stop)
        try:
            first = list(islice(ticks, PREVIEW_ROWS))
        finally:
            ticks.close()  # releases the streaming connection
        if len(first) == PREVIEW_ROWS or stop == selection.end_ts:
            break
    return pd.DataFrame(first, columns=list(TICK_FIELDS))


def write_export(store: TickStore, selection: ExportSelection, out: BinaryIO) -> int:
    """Write the selection's CSV to a binary file with :func:`csvio.export_csv`, the
    function behind ``python -m datacentre export``, so both give the same bytes.
    Streams: constant memory whatever the range. Returns the data rows."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        return export_csv(store, text, symbols=selection.resolved_symbols(store),
                          start_ts=selection.start_ts, end_ts=selection.end_ts)
    finally:
        text.flush()
        text.detach()


def export_file(db_url: str, selection: ExportSelection) -> Callable[[], bytes]:
    """The download button's ``data`` callable: runs only on click, off the script thread.

    Streamlit 1.67 turns whatever the callable returns into one ``bytes`` object (its
    ``convert_data_to_bytes_and_infer_mime``; generators are not accepted) kept in
    its media store while the session lasts. So the CSV is streamed from the store
    into a temporary file at constant memory, then read back once: the file's bytes
    are the only full copy.
    """

    def generate() -> bytes:
        store = TickStore(db_url, create=False)
        handle, path = tempfile.mkstemp(prefix="datacentre_export_", suffix=".csv")
        try:
            with os.fdopen(handle, "wb") as out:
                write_export(store, selection, out)
            with open(path, "rb") as done:
                return done.read()
        finally:
            store.close()
            os.unlink(path)

    return generate


def export_command(selection: ExportSelection, *, db_url: str | None = None) -> str:
    """The ``python -m datacentre export`` command line that writes the same file."""
    parts = ["python", "-m", "datacentre", "export"]
    if db_url:
        parts += ["--db", db_url]
    for symbol in selection.symbols:
        parts += ["--symbol", symbol]
    if selection.underlying:
        parts += ["--underlying", selection.underlying]
        if selection.expiry:
            parts += ["--expiry", selection.expiry]
    parts += ["--start", selection.start_ts, "--end", selection.end_ts, "--out", selection.file_name()]
    return " ".join(shlex.quote(p) for p in parts)

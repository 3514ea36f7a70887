"""Export: stored ticks as CSV (14 seed fields, ts order), exactly as ``python -m datacentre export``."""
from datetime import date, time, timedelta

import streamlit as st

from datacentre.app import export, reads, tables, ui
from datacentre.app.days import ist_clock, ist_ts, minute_of
from datacentre.app.formatting import fmt_day, fmt_expiry, fmt_number
from datacentre.core.errors import StoreError
from datacentre.core.ticks import IST, parse_ts

ALL, EXPIRY, SYMBOLS = "Underlying", "One expiry", "Symbols"
MODES = (ALL, EXPIRY, SYMBOLS)
BYTES_PER_ROW = 125  # a typical option tick's CSV line; for the size estimate only

ctx = ui.context()
store = ui.require_store(ctx)
ui.page_header("Export", ctx, caption=f"{ctx.underlying} ticks as CSV")


days = reads.stored_days(ctx)
if not days:
    st.info(f"Nothing of {ctx.underlying} is stored yet.", icon=":material/database:")
    st.stop()
sessions = reads.stored_sessions(ctx)


def day_label(day: date) -> str:
    return fmt_day(day) if day in sessions else f"{fmt_day(day)} · after hours only"

st.markdown("##### What")
what = st.columns([4, 7], vertical_alignment="bottom")
mode = what[0].segmented_control("Ticks of", MODES, default=ALL, required=True, key="export_mode",
                                 persist_state="session",
                                 help=f"Everything stored for {ctx.underlying} (index, futures, options), "
                                      "one option expiry (with the index and its future), or symbols "
                                      "you pick")
expiry: str | None = None
symbols: tuple[str, ...] = ()
if mode == EXPIRY:
    expiries = store.option_expiries(ctx.underlying)
    chosen = ctx.expiry.isoformat() if ctx.expiry else None
    expiry = what[1].selectbox("Expiry", expiries, key="export_expiry",
                               index=expiries.index(chosen) if chosen in expiries else 0,
                               format_func=lambda e: f"{fmt_expiry(e)} ({date.fromisoformat(e):%a})",
                               help="The index, the future this chain is read against (the nearest "
                                    "expiring on or after it) and every option of this expiry")
elif mode == SYMBOLS:
    listed = export.export_symbols(ctx)
    symbols = tuple(what[1].multiselect("Symbols", listed, default=[ctx.index_symbol] if listed else [],
                                        key="export_symbols", placeholder="type to search, e.g. 25600CE",
                                        help="Index, futures and options stored for this underlying"))
else:
    what[1].caption(f"The index, futures and options of {ctx.underlying}: every symbol stored for it.")

st.markdown("##### When")
when = st.columns([3, 2, 2, 5], vertical_alignment="bottom")
default = reads.default_session(ctx, sessions) or days[0]
day = when[0].selectbox("Day", days, index=days.index(default), format_func=day_label, key="export_day",
                        persist_state="session",
                        help="A stored day; it opens on the last complete session. A session day's range "
                             "starts as its session (09:15-15:30 IST): widen it for the ticks after hours")
# A session day starts as its session; a day of after-hours ticks only, as its ticks.
times = reads.session_times(ctx, day) or reads.day_times(ctx, day)
first = minute_of(ist_clock(times[0])) if times else time(9, 15)
last = minute_of(ist_clock(times[-1])) if times else time(15, 30)
start_clock = when[1].time_input("From (IST)", value=first, step=timedelta(minutes=1),
                                 key=f"export_from_{day.isoformat()}")
end_clock = when[2].time_input("To (IST, inclusive)", value=last, step=timedelta(minutes=1),
                               key=f"export_to_{day.isoformat()}", help="Up to the end of this minute")
if end_clock < start_clock:
    st.error("The range ends before it starts: pick a *To* time after the *From* time.",
             icon=":material/schedule:")
    st.stop()
start_ts = ist_ts(day, start_clock.replace(second=0, microsecond=0))
end_ts = ist_ts(day, end_clock.replace(second=59, microsecond=999_000))
utc = f"{parse_ts(start_ts):%d %b %H:%M:%S} → {parse_ts(end_ts):%H:%M:%S} UTC"
when[3].caption(f"{fmt_day(day)}, {start_clock:%H:%M}:00 → {end_clock:%H:%M}:59 IST  \n"
                f"= {utc}: the file's `ts` and its name are in UTC, as the store keeps them")

selection = export.ExportSelection(ctx.settings.db_url, start_ts, end_ts,
                                  underlying=None if mode == SYMBOLS else ctx.underlying,
                                  expiry=expiry, symbols=symbols)
if mode == SYMBOLS and not symbols:
    st.info("Pick at least one symbol.", icon=":material/checklist:")
    st.stop()

try:
    rows, n_symbols = export.export_size(selection)
except StoreError as exc:
    st.error(f"Cannot count the rows: {exc}", icon=":material/database:")
    st.stop()

st.markdown("##### Download")
m = st.columns([2, 2, 2, 3], vertical_alignment="center")
m[0].metric("Rows", fmt_number(rows), border=True, help="Ticks in the selection (store.count)")
m[1].metric("Symbols", fmt_number(n_symbols), border=True, help="Symbols selected (not all need ticks)")
m[2].metric("Size", f"≈ {rows * BYTES_PER_ROW / 1e6:,.1f} MB", border=True,
            help="Estimated CSV size; the file is made when you click, streamed from the store")
with m[3]:
    st.download_button(f"Download {fmt_number(rows)} rows as CSV",
                       data=export.export_file(ctx.settings.db_url, selection),
                       file_name=selection.file_name(), mime="text/csv", on_click="ignore", type="primary",
                       icon=":material/download:", disabled=rows == 0, key="export_download", width="stretch",
                       help="The CSV is written when you click (large ranges take a few seconds)")
    st.caption(f"`{selection.file_name()}`")

st.caption("The same file from the command line:")
st.code(export.export_command(selection, db_url=store.engine.url.render_as_string(hide_password=True)),
        language="bash", wrap_lines=True)

st.markdown(f"##### Preview &nbsp;:gray[:small[first {export.PREVIEW_ROWS} rows, as in the file "
            "(ts in UTC; IST is UTC + 5:30)]]")
if rows:
    table = export.export_preview(store, selection)
    st.dataframe(table, hide_index=True, width="stretch", row_height=tables.ROW_HEIGHT,
                 height=tables.table_height(len(table)), placeholder="",
                 column_config={"ts": st.column_config.TextColumn("ts", width="medium"),
                                "symbol": st.column_config.TextColumn("symbol", width="medium")})
    first_ts = table["ts"].iloc[0] if len(table) else None
    if first_ts:
        st.caption(f"First tick at {parse_ts(first_ts).astimezone(IST):%H:%M:%S} IST.")
else:
    st.caption("No ticks stored in that range.")

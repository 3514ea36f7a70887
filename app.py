"""NIFTY Options Data Centre: the Streamlit app (``streamlit run app.py``).

Page URLs are a contract: ``/`` overview, ``/option_chain``, ``/iv_smile``,
``/oi_buildup``, ``/replay``, ``/export``, ``/status``; the day charts add ``/straddle``,
``/oi_history``, ``/futures``, ``/gex``, ``/candles`` and ``/iv_rank``. Pages are thin
files in ``pages/``; shared resources and the sidebar come from ``datacentre.app.ui``.
"""
from pathlib import Path

import streamlit as st

from datacentre.app import ui

# A file served by the app itself: a Material icon as favicon is fetched from the internet.
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"

st.set_page_config(page_title="NIFTY Options Data Centre", page_icon=FAVICON, layout="wide",
                   initial_sidebar_state="expanded")

PAGES = {
    "Live": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/option_chain.py", title="Option chain", icon=":material/table_rows:",
                url_path="option_chain"),
        st.Page("pages/iv_smile.py", title="IV smile", icon=":material/ssid_chart:", url_path="iv_smile"),
        st.Page("pages/oi_buildup.py", title="OI build-up", icon=":material/stacked_bar_chart:",
                url_path="oi_buildup"),
    ],
    "Charts": [
        st.Page("pages/straddle.py", title="Straddle", icon=":material/join:", url_path="straddle"),
        st.Page("pages/oi_history.py", title="OI history", icon=":material/timeline:", url_path="oi_history"),
        st.Page("pages/futures.py", title="Futures", icon=":material/trending_up:", url_path="futures"),
        st.Page("pages/gex.py", title="Gamma exposure", icon=":material/bar_chart:", url_path="gex"),
        st.Page("pages/candles.py", title="Candles", icon=":material/candlestick_chart:", url_path="candles"),
        st.Page("pages/iv_rank.py", title="IV rank", icon=":material/percent:", url_path="iv_rank"),
    ],
    "History": [
        st.Page("pages/replay.py", title="Replay", icon=":material/replay:", url_path="replay"),
        st.Page("pages/export.py", title="Export", icon=":material/download:", url_path="export"),
    ],
    "System": [
        st.Page("pages/status.py", title="Status", icon=":material/monitor_heart:", url_path="status"),
    ],
}

page = st.navigation(PAGES)
with ui.app_run():
    ui.app_shell()
    page.run()

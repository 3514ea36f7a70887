"""NIFTY Options Data Centre: the Streamlit app (``streamlit run app.py``).

Page URLs are a contract (DESIGN section 9): ``/`` overview, ``/option_chain``,
``/iv_smile``, ``/oi_buildup``, ``/replay``, ``/export``, ``/status``. Pages are thin
files in ``pages/``; shared resources and the sidebar come from ``datacentre.app.ui``.
"""
import streamlit as st

from datacentre.app import ui

st.set_page_config(page_title="NIFTY Options Data Centre", page_icon=":material/candlestick_chart:",
                   layout="wide", initial_sidebar_state="expanded")

PAGES = {
    "Live": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/option_chain.py", title="Option chain", icon=":material/table_rows:",
                url_path="option_chain"),
        st.Page("pages/iv_smile.py", title="IV smile", icon=":material/ssid_chart:", url_path="iv_smile"),
        st.Page("pages/oi_buildup.py", title="OI build-up", icon=":material/stacked_bar_chart:",
                url_path="oi_buildup"),
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

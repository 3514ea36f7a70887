"""replay page (being built)."""
import streamlit as st

from datacentre import ui

ctx = ui.context()
ui.page_header("replay", ctx)
st.info("This page is coming soon.")

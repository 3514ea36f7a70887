"""Everything Streamlit-facing: resources, the live feed cache, pickers, tables, charts, formatting.

Streamlit is imported only here and in ``pages/``."""

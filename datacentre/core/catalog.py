"""The names of the sources and of the import formats, for option parsers and messages.

Light on purpose: ``python -m datacentre`` builds its parser from these without importing
a source (the simulator's pricing needs SciPy, the importers pandas).
"""
from __future__ import annotations

#: ``--source``: the simulator, Angel One SmartAPI, playback of one of our CSV exports.
SOURCE_NAMES = ("sim", "smartapi", "csv")
#: ``import --format``, in the order detection tries them (``datacentre.sources.imports.PARSERS``).
IMPORT_FORMATS = ("nse-chain", "nse-chain-csv", "bhavcopy", "ticks", "csv")

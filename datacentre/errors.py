"""``datacentre.errors``, the public exception tree; it lives in :mod:`datacentre.core.errors`."""
from datacentre.core.errors import (  # noqa: F401
    ConfigError,
    DataCentreError,
    FeedError,
    ImportFormatError,
    ProtocolError,
    ReadOnlyError,
    SourceError,
    StoreError,
    SymbolError,
)

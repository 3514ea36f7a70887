"""One exception tree for the whole package.

    DataCentreError
    ├── ConfigError            bad setting or command-line value
    ├── SymbolError            a symbol that cannot be parsed or is not known
    ├── StoreError             the tick store failed or refused an operation
    │   ├── ReadOnlyError      a write attempted through a read-only query
    │   └── ImportFormatError  a file to import with bad lines (nothing was committed)
    ├── SourceError            a market-data source could not produce a snapshot
    ├── ProtocolError          a WebSocket message that breaks the protocol (has .code)
    └── FeedError              a client could not reach or lost the broadcaster

Library errors (sqlite3, SQLAlchemy, websocket-client, ...) are converted where they
enter our code, so callers only ever need ``except DataCentreError``.
"""
from __future__ import annotations


class DataCentreError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(DataCentreError, ValueError):
    """A setting, environment variable or command-line value is invalid."""


class SymbolError(DataCentreError, ValueError):
    """A trading symbol is malformed or unknown."""

    def __init__(self, symbol: str, reason: str = "not a valid symbol") -> None:
        self.symbol = symbol
        self.reason = reason
        super().__init__(symbol, reason)

    def __str__(self) -> str:
        return f"{self.symbol!r}: {self.reason}"


class StoreError(DataCentreError):
    """The tick store failed or refused an operation."""


class ReadOnlyError(StoreError):
    """A query tried to change the store through a read-only connection."""


class ImportFormatError(StoreError):
    """An import found invalid lines; nothing was committed.

    ``problems`` is a list of ``(where, message)``: ``where`` is a line number, or text
    such as ``records.data[12].CE`` for formats without lines; ``source`` names the file.
    """

    def __init__(self, problems: list[tuple[int | str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__(problems)

    def __str__(self) -> str:
        shown = "; ".join(f"line {n}: {msg}" if isinstance(n, int) else f"{n}: {msg}"
                          for n, msg in self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}{len(self.problems)} bad line(s), nothing imported: {shown}{more}"


class SourceError(DataCentreError):
    """A market-data source could not produce a snapshot."""


class ProtocolError(DataCentreError):
    """A message breaks the WebSocket protocol.

    ``code`` is one of the protocol error codes (``invalid_json``, ``bad_request``,
    ``unknown_type``, ``unknown_symbol``, ``too_large``, ``rate_limited``).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(code, message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class FeedError(DataCentreError, ConnectionError):
    """A client could not reach the broadcaster, or a request timed out."""

"""Play a CSV export back as a live source (tick ``source`` = ``"csv"``).

The file has the export format of :mod:`datacentre.store.csvio` (header = the 14 tick fields).
Consecutive rows sharing a ``ts`` form one stored snapshot; each :meth:`CsvFileSource.snapshot`
call returns the next one, restamped with the collector's moment and ``source = "csv"``, so a
recorded session can drive the collector, the broadcaster and the app like a market.

The whole file is checked when the source is created, with csvio's row validation plus a check
that ``ts`` never goes backwards, and :class:`ImportFormatError` lists every bad line by
number. Playback streams the file: memory holds one snapshot, whatever the file size. At the
end the source starts again from the top (``loop=True``; cumulative volume then drops back
to the first snapshot's) or raises ``SourceError("end of file ...")`` on every call, which the
collector logs.

Options the file gives without IV get IV and Greeks computed from their prices on the forward
of their expiry (:func:`datacentre.core.forward.snapshot_greeks`), as of the snapshot's own
recorded time, so the contracts' time to expiry is the one they had, not the one at playback.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Self

from datacentre.core.config import DEFAULT_RISK_FREE_RATE
from datacentre.core.errors import ConfigError, ImportFormatError, SourceError
from datacentre.core.forward import snapshot_greeks
from datacentre.core.ticks import format_ts, parse_ts, tick_dict
from datacentre.store.csvio import check_csv, read_ticks

SOURCE = "csv"
ENCODING = "utf-8-sig"  # tolerates the byte-order mark spreadsheet programs write


class _TsOrder:
    """A :func:`~datacentre.store.csvio.check_csv` check: ``ts`` never goes back; counts snapshots."""

    def __init__(self) -> None:
        self.last_ts: str | None = None  # canonical text, which sorts like the instants
        self.snapshots = 0

    def __call__(self, tick: dict) -> str | None:
        ts = tick["ts"]
        if self.last_ts is not None and ts < self.last_ts:
            return (f"ts {ts} is earlier than the line before ({self.last_ts}): "
                    f"rows must be in ts order")
        self.snapshots += ts != self.last_ts
        self.last_ts = ts
        return None


def check_playback_file(handle: IO[str]) -> int:
    """Validate every line and the ``ts`` order; return the number of snapshots.

    Raises :class:`ImportFormatError` listing the bad lines (at most ``MAX_PROBLEMS``).
    """
    order = _TsOrder()
    check_csv(handle, order)
    if order.snapshots == 0:
        raise ImportFormatError([(2, "the file has a header but no ticks")])
    return order.snapshots


class CsvFileSource:
    """Stored snapshots of a CSV export, one per :meth:`snapshot` call, in file order.

    >>> source = CsvFileSource("session.csv", loop=True)
    >>> Collector(store, source, interval=1).run(stop)
    """

    name = SOURCE

    def __init__(self, path: str | Path, *, loop: bool = False,
                 risk_free_rate: float = DEFAULT_RISK_FREE_RATE) -> None:
        self.path = Path(path)
        self.loop = bool(loop)
        self.risk_free_rate = float(risk_free_rate)
        try:
            with self._open() as handle:
                self.snapshots = check_playback_file(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read the CSV file {str(self.path)!r}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ImportFormatError([(1, f"not UTF-8 text: {exc.reason}")]) from None
        self.played = 0  # snapshots returned so far (all passes)
        self.passes = 0  # completed passes through the file
        self._handle: IO[str] | None = None
        self._groups: Iterator[list[dict]] | None = None
        self._ended = False

    def __repr__(self) -> str:
        return f"CsvFileSource({str(self.path)!r}, loop={self.loop}, snapshots={self.snapshots})"

    def _open(self) -> IO[str]:
        return self.path.open(newline="", encoding=ENCODING)

    def _read_groups(self, handle: IO[str]) -> Iterator[list[dict]]:
        group: list[dict] = []
        group_ts = None
        for tick in read_ticks(handle):
            if group and tick["ts"] != group_ts:
                yield group
                group = []
            group_ts = tick["ts"]
            group.append(tick)
        if group:
            yield group

    def _next_group(self) -> list[dict] | None:
        if self._groups is None:
            try:
                self._handle = self._open()
            except OSError as exc:
                raise SourceError(f"cannot reopen {str(self.path)!r}: {exc.strerror or exc}") from None
            self._groups = self._read_groups(self._handle)
        try:
            return next(self._groups)
        except StopIteration:
            self.close()
            self.passes += 1
            return None
        except (ValueError, ConfigError) as exc:  # the file changed since it was checked
            self.close()
            raise SourceError(f"{str(self.path)!r} changed during playback: {exc}") from None

    def snapshot(self, moment: datetime) -> list[dict]:
        """The next stored snapshot, stamped ``moment``; ``SourceError`` at the end unless looping."""
        group = None if self._ended else self._next_group()
        if group is None and self.loop:
            group = self._next_group()
        if group is None:
            self._ended = True
            raise SourceError(f"end of file: {str(self.path)!r} played all {self.snapshots} snapshots "
                              f"(use loop=True to start again)")
        self.played += 1
        group = snapshot_greeks(group, group[0]["ts"], self.risk_free_rate, missing_only=True)
        ts = format_ts(parse_ts(moment))
        return [{**tick_dict(tick), "ts": ts, "source": SOURCE} for tick in group]

    def close(self) -> None:
        """Release the file. A later :meth:`snapshot` reads again from the first snapshot
        (after the end of a non-looping playback it keeps raising ``SourceError``)."""
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._groups = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

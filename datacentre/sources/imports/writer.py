"""The thin writer: one parsed file, one transaction, through the store's bulk write path.

The store skips rows already stored for ``(symbol, ts)``, so writing a file twice adds
nothing; a failure rolls the whole file back.
"""
from __future__ import annotations

from collections.abc import Callable

from datacentre.sources.imports.common import ParsedFile
from datacentre.store.tickstore import TickStore, batched

SNAPSHOTS_PER_BATCH = 50


def write_file(store: TickStore, parsed: ParsedFile, *,
               on_rows: Callable[[int], object] | None = None) -> int:
    """Write every snapshot of ``parsed`` in one transaction; return the number of new rows."""
    inserted = 0
    with store.bulk_writer() as write:
        for batch in batched(parsed.snapshots(), SNAPSHOTS_PER_BATCH):
            inserted += write(batch)
            if on_rows is not None:
                on_rows(sum(len(ticks) for _, ticks in batch))
    return inserted

"""The tick store: the schema, :class:`TickStore` (all SQL lives in this package) and CSV in/out."""
from datacentre.store.existing import open_existing_store as open_existing_store
from datacentre.store.tickstore import TickStore as TickStore
from datacentre.store.tickstore import open_store as open_store

"""Running the data centre: the collector, backfill, the embedded data centre, services, verify."""

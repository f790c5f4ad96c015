"""Driver supply: driver records, the GEO index of available drivers, nearest search, matching."""

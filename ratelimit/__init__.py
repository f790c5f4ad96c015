"""A Redis token bucket, usable on its own."""

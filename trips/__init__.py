"""Trips: riders, the trip model and state machine, the pricing client."""

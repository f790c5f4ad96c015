"""Simulated outside world: the pricing service, drivers and riders."""

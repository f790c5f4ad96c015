"""`ridehail bench`: measurements beside their baselines, in one run on one machine."""

"""ridehail: the wiring of the bounded contexts (dispatch, trips, ratelimit) into one service."""

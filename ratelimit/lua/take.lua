-- KEYS[1] the bucket. ARGV: capacity, refill tokens, period ms, cost.
-- Returns {allowed, remaining, retry_after_ms, reset_ms}.
return take_tokens(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]))

-- Before a trip request costs anything (surge, pricing): has this Idempotency-Key been seen,
-- may the rider request now (its token bucket), and has it a live trip? One round trip.
-- KEYS[1] idempotency key, KEYS[2] rider's live-trip pointer, KEYS[3] rider's request bucket.
-- ARGV: body hash, bucket capacity, refill, period ms.
-- Returns {outcome, trip id or '', allowed, remaining, retry_after_ms, reset_ms}; outcome is
-- 'existing', 'mismatch', 'live', 'limited' or 'new'. create_trip.lua checks again atomically.
local prior = redis.call('GET', KEYS[1])
local cap, refill, period = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if prior then
  -- A replay costs no token; a take of 0 reports what the bucket holds.
  local d = take_tokens(KEYS[3], cap, refill, period, 0)
  local hash, id = string.match(prior, '^(%S+) (%S+)$')
  local outcome = 'mismatch'
  if hash == ARGV[1] then outcome = 'existing' end
  return {outcome, id, d[1], d[2], d[3], d[4]}
end
local d = take_tokens(KEYS[3], cap, refill, period, 1)
if d[1] == 0 then return {'limited', '', d[1], d[2], d[3], d[4]} end
local live = redis.call('GET', KEYS[2])
if live then return {'live', live, d[1], d[2], d[3], d[4]} end
return {'new', '', d[1], d[2], d[3], d[4]}

-- Before a trip request costs anything (surge, pricing): has this Idempotency-Key been seen,
-- may the rider request now (its token bucket), and has it a live trip? One round trip.
-- KEYS[1] idempotency key, KEYS[2] rider's live-trip pointer, KEYS[3] rider's request bucket.
-- ARGV: body hash, bucket capacity, refill, period ms.
-- Returns {outcome, trip id or '', allowed, remaining, retry_after_ms, reset_ms}; outcome is
-- 'existing', 'mismatch', 'live', 'limited' or 'new'. create_trip.lua checks again atomically.
local prior = redis.call('GET', KEYS[1])
if prior then
  local hash, id = string.match(prior, '^(%S+) (%S+)$')
  if hash == ARGV[1] then return {'existing', id, 1, 0, 0, 0} end
  return {'mismatch', id, 1, 0, 0, 0}
end
local d = take_tokens(KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), 1)
if d[1] == 0 then return {'limited', '', d[1], d[2], d[3], d[4]} end
local live = redis.call('GET', KEYS[2])
if live then return {'live', live, d[1], d[2], d[3], d[4]} end
return {'new', '', d[1], d[2], d[3], d[4]}

-- Create a trip, idempotently, for a rider without a live trip.
-- KEYS[1] idempotency key, KEYS[2] rider's live-trip pointer, KEYS[3] the trip,
-- KEYS[4] the shard's event stream, KEYS[5] the shard's watchdog queue.
-- ARGV: body hash, trip id, rider id, idempotency ttl s, watchdog delay ms, then field/value
-- pairs of the trip record.
-- Returns {'created', id}, {'existing', id} (same key, same body), {'mismatch', id} (same key,
-- another body) or {'live', id} (the rider's live trip).
local prior = redis.call('GET', KEYS[1])
if prior then
  local hash, id = string.match(prior, '^(%S+) (%S+)$')
  if hash == ARGV[1] then return {'existing', id} end
  return {'mismatch', id}
end
local live = redis.call('GET', KEYS[2])
if live then return {'live', live} end
local now = now_ms()
local now_s = string.format('%d', now)
local trip_id, rider = ARGV[2], ARGV[3]
redis.call('HSET', KEYS[3], 'rider', rider, 'state', 'requested', 'version', 1, 'created', now_s,
  'updated', now_s, unpack(ARGV, 6))
redis.call('SET', KEYS[2], trip_id)
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. trip_id, 'EX', tonumber(ARGV[4]))
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[5]), trip_id)
append_event(KEYS[4], trip_id, rider, 'request', '', 'requested', 1, '', now)
return {'created', trip_id}

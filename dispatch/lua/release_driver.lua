-- Give a driver back to supply (decline, expiry, cancel, completion), fenced by the claim
-- version, and index it again where it is.
-- KEYS[1] the driver record, KEYS[2] available GEO index, KEYS[3] last-seen zset,
-- KEYS[4] offer-expiry queue.
-- ARGV: driver_id, trip_id, token, stale_after_ms, only_if_expired ('1': only an offer whose
-- expiry has passed, as the expiry worker wants).
-- Returns 1 when released, 0 when the driver does not hold that trip with that token.
local now = now_ms()
local cur = redis.call('HMGET', KEYS[1], 'status', 'trip', 'ver', 'oexp')
if (cur[1] ~= 'offered' and cur[1] ~= 'on_trip') or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then
  return 0
end
if ARGV[5] == '1' and (cur[1] ~= 'offered' or tonumber(cur[4]) > now) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'available')
redis.call('HDEL', KEYS[1], 'trip', 'offer', 'oexp')
redis.call('ZREM', KEYS[4], ARGV[1])
index_if_fresh(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[4]))
return 1

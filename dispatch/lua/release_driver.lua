-- Give a driver back to supply (decline, expiry, cancel, completion), fenced by the claim
-- version, and index it again where it is.
-- KEYS[1] the driver record, KEYS[2] its shard's offer-expiry queue, KEYS[3] available GEO
-- index and KEYS[4] last-seen zset (inline only; sharded, both repeat KEYS[1], untouched).
-- ARGV: inline ('1'/'0'), driver_id, trip_id, token, stale_after_ms, only_if_expired ('1':
-- only an offer whose expiry has passed, as the expiry worker wants).
-- Returns {1, index step} when released, {0} when the driver does not hold that trip with
-- that token.
local inline = ARGV[1] == '1'
local now = now_ms()
local cur = redis.call('HMGET', KEYS[1], 'status', 'trip', 'ver', 'oexp')
if (cur[1] ~= 'offered' and cur[1] ~= 'on_trip') or cur[2] ~= ARGV[3] or cur[3] ~= ARGV[4] then
  return {0}
end
if ARGV[6] == '1' and (cur[1] ~= 'offered' or tonumber(cur[4]) > now) then return {0} end
redis.call('HSET', KEYS[1], 'status', 'available')
redis.call('HDEL', KEYS[1], 'trip', 'offer', 'oexp')
redis.call('ZREM', KEYS[2], ARGV[2])
local step = index_if_fresh(KEYS[1], ARGV[2], now, tonumber(ARGV[5]), inline, KEYS[3], KEYS[4])
return append_all({1}, step)

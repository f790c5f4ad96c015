-- Claim an available, fresh driver for a trip: the one compare-and-set that makes an offer.
-- KEYS[1] the driver record, KEYS[2] available GEO index, KEYS[3] last-seen zset,
-- KEYS[4] offer-expiry queue.
-- ARGV: driver_id, trip_id, stale_after_ms, offer ttl ms, offer JSON (for the driver app).
-- Returns {version, expires_ms} on success: the version is the fencing token every later
-- write about this offer must carry. Returns {0, reason} when the driver cannot be claimed.
local now = now_ms()
local cur = redis.call('HMGET', KEYS[1], 'status', 'seen', 'ver')
if cur[1] ~= 'available' then return {0, cur[1] or 'unknown'} end
if not cur[2] or now - tonumber(cur[2]) > tonumber(ARGV[3]) then return {0, 'stale'} end
local ver = tonumber(cur[3] or '0') + 1
local expires = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'offered', 'trip', ARGV[2], 'ver', ver, 'offer', ARGV[5],
  'oexp', string.format('%d', expires))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], expires, ARGV[1])
return {ver, expires}

-- Claim an available, fresh driver for a trip: the one compare-and-set that makes an offer.
-- KEYS[1] the driver record, KEYS[2] its shard's offer-expiry queue, KEYS[3] available GEO
-- index and KEYS[4] last-seen zset (inline only; sharded, both repeat KEYS[1], untouched).
-- ARGV: inline ('1'/'0'), driver_id, trip_id, stale_after_ms, offer ttl ms, offer JSON.
-- Returns {version, expires_ms, index step} on success: the version is the fencing token
-- every later write about this offer must carry. Returns {0, reason} when the driver cannot
-- be claimed.
local inline = ARGV[1] == '1'
local now = now_ms()
local cur = redis.call('HMGET', KEYS[1], 'status', 'seen', 'ver')
if cur[1] ~= 'available' then return {0, cur[1] or 'unknown'} end
if not cur[2] or now - tonumber(cur[2]) > tonumber(ARGV[4]) then return {0, 'stale'} end
local ver = tonumber(cur[3] or '0') + 1
local expires = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'status', 'offered', 'trip', ARGV[3], 'ver', ver, 'offer', ARGV[6],
  'oexp', string.format('%d', expires))
redis.call('ZADD', KEYS[2], expires, ARGV[2])
return append_all({ver, expires}, index_del(KEYS[1], ARGV[2], inline, KEYS[3], KEYS[4], false))

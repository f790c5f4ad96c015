-- The driver takes the trip it was offered: offered -> on_trip, fenced by the claim version.
-- KEYS[1] the driver record, KEYS[2] its shard's offer-expiry queue.
-- ARGV: driver_id, trip_id, token, and '1' to take it even past its expiry (the trip accepted
-- it already, and this record lost that write in a failover).
-- Returns 1 on success, 0 when the driver does not hold that offer, -1 when it has expired.
local cur = redis.call('HMGET', KEYS[1], 'status', 'trip', 'ver', 'oexp')
if cur[1] ~= 'offered' or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then return 0 end
if ARGV[4] ~= '1' and now_ms() > tonumber(cur[4]) then return -1 end
redis.call('HSET', KEYS[1], 'status', 'on_trip')
redis.call('HDEL', KEYS[1], 'offer', 'oexp')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1

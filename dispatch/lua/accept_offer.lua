-- The driver takes the trip it was offered: offered -> on_trip, fenced by the claim version.
-- KEYS[1] the driver record, KEYS[2] offer-expiry queue. ARGV: driver_id, trip_id, token.
-- Returns 1 on success, 0 when the driver does not hold that offer, -1 when it has expired.
local cur = redis.call('HMGET', KEYS[1], 'status', 'trip', 'ver', 'oexp')
if cur[1] ~= 'offered' or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then return 0 end
if now_ms() > tonumber(cur[4]) then return -1 end
redis.call('HSET', KEYS[1], 'status', 'on_trip')
redis.call('HDEL', KEYS[1], 'offer', 'oexp')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1

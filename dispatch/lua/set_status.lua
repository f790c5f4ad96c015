-- Set a driver available or offline, and put it in or take it out of the index.
-- KEYS[1] the driver record, KEYS[2] available GEO index, KEYS[3] last-seen zset.
-- ARGV: driver_id, status, stale_after_ms.
-- Returns {} for an unknown driver, else the driver view followed by the server time.
if not redis.call('HGET', KEYS[1], 'status') then return {} end
local id, status = ARGV[1], ARGV[2]
local now = now_ms()
redis.call('HSET', KEYS[1], 'status', status)
if status == 'available' then
  local pos = redis.call('HMGET', KEYS[1], 'lng', 'lat', 'seen')
  if pos[1] and now - tonumber(pos[3]) <= tonumber(ARGV[3]) then
    redis.call('GEOADD', KEYS[2], pos[1], pos[2], id)
    redis.call('ZADD', KEYS[3], pos[3], id)
  end
else
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
local view = driver_view(KEYS[1])
view[#view + 1] = now
return view

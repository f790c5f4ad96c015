-- Set a driver available or offline, and put it in or take it out of the index.
-- KEYS[1] the driver record, KEYS[2] available GEO index, KEYS[3] last-seen zset.
-- ARGV: driver_id, status, stale_after_ms.
-- Returns {} for an unknown driver, {'busy'} while it holds an offer or a trip, else the
-- driver view followed by the server time.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {} end
if current == 'offered' or current == 'on_trip' then return {'busy'} end
local id, status = ARGV[1], ARGV[2]
local now = now_ms()
redis.call('HSET', KEYS[1], 'status', status)
if status == 'available' then
  index_if_fresh(KEYS[1], KEYS[2], KEYS[3], id, now, tonumber(ARGV[3]))
else
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
local view = driver_view(KEYS[1])
view[#view + 1] = now
return view

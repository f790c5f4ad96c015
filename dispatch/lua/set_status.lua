-- Set a driver available or offline, and put it in or take it out of the index.
-- KEYS[1] the driver record, KEYS[2] available GEO index, KEYS[3] last-seen zset (inline only;
-- sharded, both repeat KEYS[1], untouched).
-- ARGV: inline ('1'/'0'), driver_id, status, stale_after_ms.
-- Returns {} for an unknown driver, {'busy'} while it holds an offer or a trip, else the
-- driver view, the server time and the index step.
local inline = ARGV[1] == '1'
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {} end
if current == 'offered' or current == 'on_trip' then return {'busy'} end
local id, status = ARGV[2], ARGV[3]
local now = now_ms()
redis.call('HSET', KEYS[1], 'status', status)
local step
if status == 'available' then
  step = index_if_fresh(KEYS[1], id, now, tonumber(ARGV[4]), inline, KEYS[2], KEYS[3])
else
  step = index_del(KEYS[1], id, inline, KEYS[2], KEYS[3], true)
end
local view = driver_view(KEYS[1])
view[#view + 1] = now
return append_all(view, step)

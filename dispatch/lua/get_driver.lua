-- KEYS[1] the driver record. Returns {} for an unknown driver, else the driver view followed
-- by the server time (so freshness is judged on the server's clock).
if not redis.call('HGET', KEYS[1], 'status') then return {} end
local view = driver_view(KEYS[1])
view[#view + 1] = now_ms()
return view

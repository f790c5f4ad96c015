-- Shared by every supply script (prepended by ridehail.lua.load_script).
-- Time always comes from the Redis server, never from a client.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The public view of a driver record, in the order dispatch.redis_supply reads it.
local DRIVER_FIELDS = {'status', 'lat', 'lng', 'seen', 'name', 'veh', 'ver'}
local function driver_view(key)
  return redis.call('HMGET', key, unpack(DRIVER_FIELDS))
end

-- Shared by every supply script (prepended by ridehail.lua.load_script).
-- Time always comes from the Redis server, never from a client.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The public view of a driver record, in the order dispatch.redis_supply reads it.
local DRIVER_FIELDS = {'status', 'lat', 'lng', 'seen', 'name', 'veh', 'ver', 'trip', 'offer',
  'oexp'}
local function driver_view(key)
  return redis.call('HMGET', key, unpack(DRIVER_FIELDS))
end

-- Put a driver back in the index if its last ping is recent enough to offer it trips.
local function index_if_fresh(key, geo, seen_set, id, now, stale_ms)
  local pos = redis.call('HMGET', key, 'lng', 'lat', 'seen')
  if pos[1] and pos[3] and now - tonumber(pos[3]) <= stale_ms then
    redis.call('GEOADD', geo, pos[1], pos[2], id)
    redis.call('ZADD', seen_set, pos[3], id)
  end
end

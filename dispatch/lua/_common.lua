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

-- The supply index. Inline (the one-slot layout) a script changes the GEO set and last-seen
-- set it was given, in the same step as the record. Sharded, the index is on another slot:
-- the record notes the cell its entry is in (`cell`; `pcell` is the cell of its position) and
-- the script returns an index step for the caller to apply there:
-- {op, old cell, new cell, lng, lat, seen} with op 'add' (and, when the old cell differs,
-- a removal from it), 'del' (from the old cell) or '' (nothing).
local NO_STEP = {'', '', '', '', '', ''}

local function index_add(key, id, lng, lat, seen, pcell, inline, geo, seen_set)
  if inline then
    redis.call('GEOADD', geo, lng, lat, id)
    redis.call('ZADD', seen_set, seen, id)
    return NO_STEP
  end
  if not pcell or pcell == '' then return NO_STEP end
  local old = redis.call('HGET', key, 'cell') or ''
  if old ~= pcell then redis.call('HSET', key, 'cell', pcell) end
  return {'add', old, pcell, lng, lat, seen}
end

-- Take a driver out of the index. `forget`: the record stops noting the cell (a ping of a
-- driver that is not available); a claim keeps it, so the driver's next ping removes again
-- whatever a ping in flight may have put back meanwhile.
local function index_del(key, id, inline, geo, seen_set, forget)
  if inline then
    redis.call('ZREM', geo, id)
    redis.call('ZREM', seen_set, id)
    return NO_STEP
  end
  local old = redis.call('HGET', key, 'cell')
  if not old then return NO_STEP end
  if forget then redis.call('HDEL', key, 'cell') end
  return {'del', old, '', '', '', ''}
end

-- Put a driver back in the index if its last ping is recent enough to offer it trips.
local function index_if_fresh(key, id, now, stale_ms, inline, geo, seen_set)
  local pos = redis.call('HMGET', key, 'lng', 'lat', 'seen', 'pcell')
  if pos[1] and pos[3] and now - tonumber(pos[3]) <= stale_ms then
    return index_add(key, id, pos[1], pos[2], pos[3], pos[4], inline, geo, seen_set)
  end
  return NO_STEP
end

local function append_all(out, items)
  for _, v in ipairs(items) do out[#out + 1] = v end
  return out
end

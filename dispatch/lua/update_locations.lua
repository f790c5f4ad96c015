-- Apply a batch of location updates (a single update is a batch of one).
-- KEYS[1] available GEO index, KEYS[2] last-seen zset, KEYS[2 + i] record of row i.
-- ARGV: 6 values per row: driver_id, lng, lat, recorded_ms ('' = now), heading ('' = none),
--       speed ('' = none).
-- Returns 2 values per row: code (1 applied, 0 ignored as not newer, -1 unknown driver) and
-- the driver's pending offer ('' when none).
local now = now_ms()
local now_s = string.format('%d', now)
local out = {}
for i = 0, #ARGV / 6 - 1 do
  local key = KEYS[3 + i]
  local a = i * 6
  local id, lng, lat = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local rec = ARGV[a + 4]
  local cur = redis.call('HMGET', key, 'status', 'rec', 'offer')
  local code = -1
  if cur[1] then
    code = 0
    local rec_ms = now
    if rec ~= '' then rec_ms = tonumber(rec) end
    if rec_ms > tonumber(cur[2] or '-1') then
      code = 1
      redis.call('HSET', key, 'lng', lng, 'lat', lat, 'rec', string.format('%d', rec_ms),
        'seen', now_s)
      if ARGV[a + 5] ~= '' then redis.call('HSET', key, 'hdg', ARGV[a + 5]) end
      if ARGV[a + 6] ~= '' then redis.call('HSET', key, 'spd', ARGV[a + 6]) end
      if cur[1] == 'available' then
        redis.call('GEOADD', KEYS[1], lng, lat, id)
        redis.call('ZADD', KEYS[2], now, id)
      end
    end
  end
  out[#out + 1] = code
  out[#out + 1] = cur[3] or ''
end
return out

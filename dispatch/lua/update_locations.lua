-- Apply a batch of location updates (a single update is a batch of one).
-- KEYS[1] available GEO index, KEYS[2] last-seen zset, KEYS[3] position stream,
-- KEYS[4] the sender's token bucket (only touched when a limit is given), KEYS[4 + i] record of
-- row i.
-- ARGV[1] position stream length cap (0: no stream), ARGV[2] staleness limit ms,
-- ARGV[3..5] the sender's limit: capacity (0: none), refill, period ms. Then 6 values per row:
-- driver_id, lng, lat, recorded_ms ('' = now), heading ('' = none), speed ('' = none).
-- Returns the limit decision {allowed, remaining, retry_after_ms, reset_ms} ({1,0,0,0} without
-- a limit; nothing else happens when it is refused), then 3 values per row: code (1 applied,
-- 0 ignored: not newer than the last applied one, or recorded longer ago than the staleness
-- limit; -1 unknown driver), the driver's pending offer ('' when none) and its expiry in ms.
-- `seen` is when the position was true (recorded_at, never later than now), so freshness
-- judges the position, not the moment it reached us.
local out = {1, 0, 0, 0}
if tonumber(ARGV[3]) > 0 then
  out = take_tokens(KEYS[4], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), 1)
  if out[1] == 0 then return out end
end
local now = now_ms()
local cap = tonumber(ARGV[1])
local stale_ms = tonumber(ARGV[2])
for i = 0, (#ARGV - 5) / 6 - 1 do
  local key = KEYS[5 + i]
  local a = 5 + i * 6
  local id, lng, lat = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local rec = ARGV[a + 4]
  local cur = redis.call('HMGET', key, 'status', 'rec', 'offer', 'oexp')
  local code = -1
  if cur[1] then
    code = 0
    local rec_ms = now
    if rec ~= '' then rec_ms = tonumber(rec) end
    if rec_ms > tonumber(cur[2] or '-1') and now - rec_ms <= stale_ms then
      code = 1
      local seen = math.min(rec_ms, now)
      redis.call('HSET', key, 'lng', lng, 'lat', lat, 'rec', string.format('%d', rec_ms),
        'seen', string.format('%d', seen))
      if ARGV[a + 5] ~= '' then redis.call('HSET', key, 'hdg', ARGV[a + 5]) end
      if ARGV[a + 6] ~= '' then redis.call('HSET', key, 'spd', ARGV[a + 6]) end
      if cur[1] == 'available' then
        redis.call('GEOADD', KEYS[1], lng, lat, id)
        redis.call('ZADD', KEYS[2], seen, id)
      end
      if cap > 0 then
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', cap, '*', 'd', id, 'lat', lat, 'lng', lng,
          's', cur[1])
      end
    end
  end
  out[#out + 1] = code
  out[#out + 1] = cur[3] or ''
  out[#out + 1] = cur[4] or ''
end
return out

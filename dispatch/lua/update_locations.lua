-- Apply a batch of location updates (a single update is a batch of one).
-- KEYS[1] the position stream, KEYS[2] the sender's token bucket (only touched when a limit is
-- given), KEYS[3] available GEO index and KEYS[4] last-seen zset (inline only; sharded, both
-- repeat KEYS[1], untouched), KEYS[4 + i] record of row i.
-- ARGV[1] inline ('1'/'0'), ARGV[2] position stream length cap (0: no stream), ARGV[3]
-- staleness limit ms, ARGV[4..6] the sender's limit: capacity (0: none), refill, period ms.
-- Then 7 values per row: driver_id, lng, lat, recorded_ms ('' = now), heading ('' = none),
-- speed ('' = none), the position's index cell ('' inline).
-- Returns the limit decision {allowed, remaining, retry_after_ms, reset_ms} ({1,0,0,0} without
-- a limit; nothing else happens when it is refused), then per row: code (1 applied, 0 ignored:
-- not newer than the last applied one, or recorded longer ago than the staleness limit; -1
-- unknown driver), the driver's pending offer ('' when none) and its expiry in ms, and, when
-- sharded, the row's index step (6 values, see _common.lua).
-- `seen` is when the position was true (recorded_at, never later than now), so freshness
-- judges the position, not the moment it reached us.
local out = {1, 0, 0, 0}
if tonumber(ARGV[4]) > 0 then
  out = take_tokens(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), 1)
  if out[1] == 0 then return out end
end
local inline = ARGV[1] == '1'
local now = now_ms()
local cap = tonumber(ARGV[2])
local stale_ms = tonumber(ARGV[3])
for i = 0, (#ARGV - 6) / 7 - 1 do
  local key = KEYS[5 + i]
  local a = 6 + i * 7
  local id, lng, lat = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local rec = ARGV[a + 4]
  local cur = redis.call('HMGET', key, 'status', 'rec', 'offer', 'oexp')
  local code = -1
  local step = NO_STEP
  if cur[1] then
    code = 0
    -- A ping the server stamps (no recorded_at) is newer than what came before it, even in
    -- the same millisecond; one the client stamps must be strictly newer.
    local rec_ms, last = now, tonumber(cur[2] or '-1')
    if rec ~= '' then rec_ms = tonumber(rec) end
    local newer = rec_ms > last or (rec == '' and rec_ms == last)
    if newer and now - rec_ms <= stale_ms then
      code = 1
      local seen = string.format('%d', math.min(rec_ms, now))
      redis.call('HSET', key, 'lng', lng, 'lat', lat, 'rec', string.format('%d', rec_ms),
        'seen', seen)
      if ARGV[a + 5] ~= '' then redis.call('HSET', key, 'hdg', ARGV[a + 5]) end
      if ARGV[a + 6] ~= '' then redis.call('HSET', key, 'spd', ARGV[a + 6]) end
      if not inline then redis.call('HSET', key, 'pcell', ARGV[a + 7]) end
      if cur[1] == 'available' then
        step = index_add(key, id, lng, lat, seen, ARGV[a + 7], inline, KEYS[3], KEYS[4])
      end
      if cap > 0 then
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'd', id, 'lat', lat, 'lng', lng,
          's', cur[1])
      end
    end
    if cur[1] ~= 'available' and not inline then
      step = index_del(key, id, inline, KEYS[3], KEYS[4], true)
    end
  end
  out[#out + 1] = code
  out[#out + 1] = cur[3] or ''
  out[#out + 1] = cur[4] or ''
  if not inline then append_all(out, step) end
end
return out

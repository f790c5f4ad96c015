-- Shared by every trip script (prepended by ridehail.lua.load_script).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local EVENTS_CAP = 100000  -- per trip shard; the stream is for live views, not an archive

local function append_event(stream, trip_id, rider, action, from, to, version, driver, now)
  redis.call('XADD', stream, 'MAXLEN', '~', EVENTS_CAP, '*', 'trip', trip_id, 'rider', rider,
    'action', action, 'from', from, 'to', to, 'version', version, 'driver', driver or '',
    'ts', string.format('%d', now))
end

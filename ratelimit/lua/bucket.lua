-- The token bucket, as a Lua function other scripts can include (ridehail.lua.load_script
-- prepends this file wherever a script asks for it).
-- State: a hash {m = milli-tokens left, t = refilled up to, in microseconds of Redis TIME}.
-- All arithmetic is on integers (milli-tokens, microseconds) far below 2^53, so Lua's doubles
-- hold them exactly; the clock is the Redis server's, never a client's. The key expires once
-- the bucket would be full again, so an idle subject costs no memory.
-- capacity: tokens the bucket holds; refill: tokens added per `period_ms`; cost: tokens taken.
-- Returns allowed (1/0), whole tokens left, retry-after ms (0 when allowed), ms until full.
local function take_tokens(key, capacity, refill, period_ms, cost)
  local t = redis.call('TIME')
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local cap_m = capacity * 1000
  local state = redis.call('HMGET', key, 'm', 't')
  local level = tonumber(state[1]) or cap_m
  local stamp = tonumber(state[2]) or now_us
  if now_us > stamp then
    -- refill / period_ms is milli-tokens per microsecond; the remainder waits for the next take
    local added = math.floor((now_us - stamp) * refill / period_ms)
    if level + added >= cap_m then
      level, stamp = cap_m, now_us
    else
      level = level + added
      stamp = stamp + math.ceil(added * period_ms / refill)  -- never credit a microsecond twice
    end
  end
  local need = cost * 1000
  local allowed, retry_ms = 0, 0
  if level >= need then
    level = level - need
    allowed = 1
  else
    retry_ms = math.ceil((need - level) * period_ms / refill / 1000)
  end
  local reset_ms = math.ceil((cap_m - level) * period_ms / refill / 1000)
  redis.call('HSET', key, 'm', level, 't', stamp)
  redis.call('PEXPIRE', key, reset_ms + 1000)
  return {allowed, math.floor(level / 1000), retry_ms, reset_ms}
end

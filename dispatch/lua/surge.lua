-- Demand and supply around a pickup, for the surge factor.
-- KEYS[1] available GEO index, KEYS[2] the pickup cell's recent requests (zset by time).
-- ARGV: lng, lat, radius m, supply cap, window ms, request id.
-- Records the request, then returns {requests in the cell within the window, available drivers
-- within the radius (counted up to the cap: GEOSEARCH ANY stops there)}.
local now = now_ms()
local window = tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('PEXPIRE', KEYS[2], window)
local demand = redis.call('ZCARD', KEYS[2])
local nearby = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS',
  ARGV[3], 'm', 'COUNT', tonumber(ARGV[4]), 'ANY')
return {demand, #nearby}

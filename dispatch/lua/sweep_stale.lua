-- Remove drivers whose last ping is older than the limit from the index (not their records).
-- KEYS[1] available GEO index, KEYS[2] last-seen zset. ARGV: stale_after_ms, batch size.
-- Returns the number removed; any number of processes may run it at once.
local cutoff = now_ms() - tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff, 'LIMIT', 0,
  tonumber(ARGV[2]))
if #ids == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(ids))
return redis.call('ZREM', KEYS[2], unpack(ids))

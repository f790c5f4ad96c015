-- Apply index steps to one index cell (the sharded layout's second step of a ping, a claim or
-- a release). KEYS[1] the cell's GEO set, KEYS[2] its last-seen zset.
-- ARGV: number of additions n, then 4 values per addition (driver_id, lng, lat, seen ms),
-- then driver ids to remove. An addition never moves an entry back in time: a step that
-- arrives after a newer one for the same driver is dropped.
-- Returns the number of entries added or moved.
local n = tonumber(ARGV[1])
local added = 0
for i = 0, n - 1 do
  local a = 2 + i * 4
  local id, seen = ARGV[a], tonumber(ARGV[a + 3])
  local have = redis.call('ZSCORE', KEYS[2], id)
  if not have or tonumber(have) <= seen then
    redis.call('GEOADD', KEYS[1], ARGV[a + 1], ARGV[a + 2], id)
    redis.call('ZADD', KEYS[2], seen, id)
    added = added + 1
  end
end
for i = 2 + n * 4, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return added

-- Take the members of a due-queue whose time has come, leasing each to the caller: its score
-- moves `lease_ms` ahead, so other workers skip it until the caller is done (and take it again
-- if the caller dies). Any number of processes may run this at once.
-- KEYS[1] the queue (member scored by due time, ms). ARGV: batch size, lease ms.
-- Returns the members taken.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
end
return due

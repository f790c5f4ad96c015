-- One transition of the trip state machine: a guarded, versioned compare-and-set that appends
-- the event to the shard's stream. The table of legal transitions lives in trips/model.py; the
-- caller passes the states it allows for the action.
-- KEYS[1] the trip, KEYS[2] the shard's event stream, KEYS[3] the shard's watchdog queue,
-- KEYS[4] the rider's live-trip pointer.
-- ARGV[1] action, ARGV[2] allowed from-states (comma separated), ARGV[3] the new state,
-- ARGV[4] expected version ('' any), ARGV[5] expected driver ('' any),
-- ARGV[6] expected token ('' any), ARGV[7] watchdog: '' leave, '-' remove, N look again in N ms,
-- ARGV[8] '1' the rider's live trip ends here, then field/value pairs to set ('' value: delete).
-- Returns {1, new version, from-state} or {0, current state, current version}.
local trip_id = string.match(KEYS[1], ':trip:(.+)$')
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'driver', 'token', 'rider')
local state, version = cur[1], tonumber(cur[2] or '0')
if not state then return {0, '', 0} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do
  if s == state then allowed = true end
end
if not allowed
  or (ARGV[4] ~= '' and tonumber(ARGV[4]) ~= version)
  or (ARGV[5] ~= '' and ARGV[5] ~= cur[3])
  or (ARGV[6] ~= '' and ARGV[6] ~= cur[4]) then
  return {0, state, version}
end
local now = now_ms()
version = version + 1
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'version', version, 'updated',
  string.format('%d', now))
for i = 9, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if ARGV[7] == '-' then
  redis.call('ZREM', KEYS[3], trip_id)
elseif ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), trip_id)
end
if ARGV[8] == '1' and redis.call('GET', KEYS[4]) == trip_id then
  redis.call('DEL', KEYS[4])
end
local driver = redis.call('HGET', KEYS[1], 'driver') or cur[3]
append_event(KEYS[2], trip_id, cur[5], ARGV[1], state, ARGV[3], version, driver, now)
return {1, version, state}

-- The k nearest available, fresh drivers within a maximum radius, exactly.
-- KEYS[1] available GEO index, KEYS[2] last-seen zset.
-- ARGV: lng, lat, k, initial radius m, max radius m, stale_after_ms, then driver ids to skip.
-- Searches the smallest circle first and doubles it until it holds k fresh drivers (or the
-- maximum is reached): GEOSEARCH cost grows with the members inside the circle, so a dense city
-- is answered from a small one. ASC COUNT n over a circle of radius r returns the n nearest
-- members of the whole index whenever it returns n of them, so the answer is exact.
-- Returns 4 values per driver, nearest first: id, distance m, lng, lat.
local lng, lat, k = ARGV[1], ARGV[2], tonumber(ARGV[3])
local radius, max_radius = tonumber(ARGV[4]), tonumber(ARGV[5])
local cutoff = now_ms() - tonumber(ARGV[6])
local skip = {}
for i = 7, #ARGV do skip[ARGV[i]] = true end

local function fresh_within(r)
  local want = k + (#ARGV - 6)
  while true do
    local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', lng, lat, 'BYRADIUS', r, 'm',
      'ASC', 'COUNT', want, 'WITHDIST', 'WITHCOORD')
    local out = {}
    for _, m in ipairs(found) do
      if #out >= 4 * k then break end
      local id = m[1]
      if not skip[id] then
        local seen = redis.call('ZSCORE', KEYS[2], id)
        if seen and tonumber(seen) >= cutoff then
          out[#out + 1] = id
          out[#out + 1] = m[2]
          out[#out + 1] = m[3][1]
          out[#out + 1] = m[3][2]
        end
      end
    end
    -- Either k fresh drivers, or the circle held fewer members than asked for: done.
    if #out >= 4 * k or #found < want then return out end
    want = want * 2  -- stale or skipped members took places; look further down the list
  end
end

while true do
  if radius > max_radius then radius = max_radius end
  local out = fresh_within(radius)
  if #out >= 4 * k or radius >= max_radius then return out end
  radius = radius * 2
end

-- state.lua: read a key's live state (read-only).
-- KEYS: see common.lua.
-- Reply: {holders, waiters, limit, delay, next start in ms from now (0 = open), backoff ms left, level}
local now = now_ms()
load(now)
local waiters = redis.call('ZCOUNT', KEYS[4], '-inf', '(' .. fmt(-now)) -- deadlines after now (negated)
local function left(f) return math.max(0, num(f) - now) end
return {nh, waiters, num('limit'), num('delay'), left('next'), left('bo'), num('bl')}

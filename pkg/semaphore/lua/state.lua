-- state.lua: read a key's live state (read-only).
-- KEYS: see common.lua.
-- Reply: {holders, waiters, limit, delay, next start in ms from now (0 = open), backoff ms left, level}
local now = now_ms()
local holders = redis.call('ZCOUNT', KEYS[1], '(' .. fmt(now), '+inf')
local waiters = redis.call('ZCOUNT', KEYS[5], '(' .. fmt(now), '+inf')
local m = redis.call('HMGET', KEYS[6], 'limit', 'delay', 'next', 'bo', 'bl')
local function left(v) return math.max(0, (tonumber(v) or 0) - now) end
return {holders, waiters, tonumber(m[1]) or 0, tonumber(m[2]) or 0, left(m[3]), left(m[4]), tonumber(m[5]) or 0}

-- refresh.lua: extend a holder's lease.
-- KEYS: see common.lua.
-- ARGV[1] rid    request id
-- ARGV[2] token  fencing token of the grant
-- ARGV[3] lease  new lease, ms, counted from now (or from the start, if that is later)
-- ARGV[4] since  us since the holder actually started, on its clock; -1 if it did not (see began)
-- ARGV[5] delay  the holder's delay, ms
-- Reply: remaining lease in ms (> 0), or -1 when the grant is gone or belongs to another token.
local rid, token, lease = ARGV[1], ARGV[2] + 0, ARGV[3] + 0
local since, delay = ARGV[4] + 0, ARGV[5] + 0
local now = now_ms()
load(now)
local h = H[rid]
if not h or h[1] ~= token then return -1 end
local exp = math.max(now, h[3]) + lease
hold(rid, h[1], h[2], h[3], exp)
began(since, delay)
needs(exp)
flush(now, redis.call('ZCARD', KEYS[2])) -- the queue's keys, if any, must share the extension
return exp - now

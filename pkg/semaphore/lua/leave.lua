-- leave.lua: release a held slot, or leave the queue; then hand free slots to the next waiters.
-- KEYS: see common.lua.
-- ARGV[1] rid    request id
-- ARGV[2] token  fencing token of the grant, or 0 when the caller never saw one (a cancelled waiter)
-- ARGV[3] since  us since the holder actually started, on its clock; -1 if it did not (see began)
-- ARGV[4] delay  the holder's delay, ms
-- Reply: 1 released, 2 left the queue, 0 not found (already released or expired: idempotent),
--        -1 fenced (the rid holds a grant with another token; nothing changed)
local rid, token = ARGV[1], tonumber(ARGV[2])
local since, delay = tonumber(ARGV[3]) or -1, tonumber(ARGV[4]) or 0
local now = now_ms()
local queued = purge(now)
local res = 0
local held = grant_fields(rid)
if held then
  if token ~= 0 and held ~= token then return -1 end
  redis.call('ZREM', KEYS[1], rid)
  redis.call('HDEL', KEYS[2], rid)
  began(since, delay) -- before pump grants the freed slot
  res = 1
elseif queued > 0 and redis.call('ZREM', KEYS[3], rid) == 1 then
  redis.call('ZREM', KEYS[5], rid)
  redis.call('HDEL', KEYS[4], rid)
  queued = queued - 1
  res = 2
end
queued = pump(now, queued)
if queued == 0 and redis.call('ZCARD', KEYS[1]) == 0 then settle(now) else touch() end
return res

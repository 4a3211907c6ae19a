-- leave.lua: release a held slot, or leave the queue; then hand free slots to the next waiters.
-- KEYS: see common.lua.
-- ARGV[1] rid    request id
-- ARGV[2] token  fencing token of the grant, or 0 when the caller never saw one (a cancelled waiter)
-- ARGV[3] since  us since the holder actually started, on its clock; -1 if it did not (see began)
-- ARGV[4] delay  the holder's delay, ms
-- Reply: 1 released, 2 left the queue, 0 not found (already released or expired: idempotent),
--        -1 fenced (the rid holds a grant with another token; nothing changed)
-- Numbers are read as s + 0, not tonumber(s): Lua 5.1's tonumber parses a string twice (strtod
-- each time), and those parses were about a tenth of these scripts' Redis CPU.
local rid, token = ARGV[1], ARGV[2] + 0
local since, delay = ARGV[3] + 0, ARGV[4] + 0

-- The fast path: a holder leaves a key nobody waits for, which is most releases. It does what the
-- general path below would (began, then settle the key: see flush in common.lua), in five or six
-- calls (at most three to find that it does not apply) and without common.lua's helpers. n (see
-- acquire.lua) stays never too low, and lmin stays at most the smallest limit among the holders.
-- The last holder leaving (n reaches 0) lets meta's expiry shrink to the gate; with holders left,
-- the expiry already covers their leases and is only extended if the gate moved past it.
local t = redis.call('TIME')
local queued = redis.call('ZCARD', KEYS[2])
local m = queued == 0 and redis.call('HMGET', KEYS[1], 'n', '=' .. rid, 'next', 'last', 'bo', 'hz')
do
  local held, exp
  if m and m[2] then held, exp = string.match(m[2], '^(%d+) %d+ %d+ (%d+)$') end
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  if exp and exp + 0 > now then
    if token ~= 0 and held + 0 ~= token then return -1 end
    local f = string.format
    local n = math.max(1, (m[1] or 1) + 0) - 1
    local nxt, last = (m[3] or 0) + 0, (m[4] or 0) + 0
    local w = {'n', f('%d', n)}
    if since >= 0 then -- began, in common.lua
      local at = math.ceil((t[1] * 1000000 + t[2] - since + 1) / 1000)
      if at > last then w[#w + 1] = 'last'; w[#w + 1] = f('%d', at) end
      if delay > 0 and at + delay > nxt then nxt = at + delay; w[#w + 1] = 'next'; w[#w + 1] = f('%d', nxt) end
    end
    local at
    if n == 0 then
      at = f('%d', math.max(now, nxt, (m[5] or 0) + 0) + 1000)
    elseif nxt + 1000 > (m[6] or 0) + 0 then
      at = f('%d', (math.floor(nxt / 1000) + 2) * 1000)
    end
    if at then
      w[#w + 1] = 'hz'
      w[#w + 1] = at
    end
    redis.call('HDEL', KEYS[1], '=' .. rid)
    redis.call('HSET', KEYS[1], unpack(w))
    if at then redis.call('PEXPIREAT', KEYS[1], at) end
    return 1
  end
end

-- The handoff: under contention most releases free the one slot of a full key (every holder and
-- the queue's head with the same limit, n of them) to the head of the queue. This grants it as
-- pump in common.lua would (began first, then grant, then the push to the head's channel), in
-- twelve calls and without loading meta whole. It applies only when nothing else could change: the
-- head is alive, the key is full again after the grant (so pump would grant nobody else), and every
-- key already expires after the new lease and gate (else flush would extend them). n and lmin stay
-- as they are (one holder out, one in); a holder whose lease ran out stays counted until the
-- general path runs, as on the fast paths.
if queued > 0 then
  local own = '=' .. rid
  m = redis.call('HMGET', KEYS[1], 'n', own, 'next', 'last', 'hz', 'tok', 'lmin')
  local held, limit, exp
  if m[2] then held, limit, exp = string.match(m[2], '^(%d+) (%d+) %d+ (%d+)$') end
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  local n = (m[1] or 0) + 0
  local head = exp and exp + 0 > now and n == limit + 0 and n == (m[7] or 0) + 0 and redis.call('ZRANGE', KEYS[2], -1, -1)[1]
  local p = head and redis.call('HGET', KEYS[3], head)
  local hlimit, hdelay, hlease, httl, ch
  if p then hlimit, hdelay, hlease, httl, ch = string.match(p, '^(%d+) (%d+) (%d+) (%d+) (.+)$') end
  local alive = ch and hlimit + 0 == n and redis.call('ZSCORE', KEYS[4], head)
  if alive and -alive > now then
    if token ~= 0 and held + 0 ~= token then return -1 end
    local f = string.format
    local nxt, last = (m[3] or 0) + 0, (m[4] or 0) + 0
    if since >= 0 then -- began, in common.lua
      local at = math.ceil((t[1] * 1000000 + t[2] - since + 1) / 1000)
      if at > last then last = at end
      if delay > 0 and at + delay > nxt then nxt = at + delay end
    end
    hdelay = hdelay + 0
    local start = math.max(now, nxt) -- grant, in common.lua
    if hdelay > 0 and last > 0 then start = math.max(start, last + hdelay) end
    local hexp = start + math.min(hlease + 0, httl + 0)
    if math.max(hexp, start + hdelay, nxt) + 1000 <= (m[5] or 0) + 0 then
      local token2 = (m[6] or 0) + 1
      local tok = f('%d', token2)
      local w = {'tok', tok, 'next', f('%d', start + hdelay), 'last', f('%d', start), 'limit', hlimit,
        'delay', f('%d', hdelay), '=' .. head, tok .. ' ' .. hlimit .. ' ' .. f('%d %d', start, hexp)}
      redis.call('HDEL', KEYS[1], own)
      redis.call('HSET', KEYS[1], unpack(w))
      redis.call('ZREM', KEYS[2], head)
      redis.call('ZREM', KEYS[4], head)
      redis.call('HDEL', KEYS[3], head)
      redis.call('PUBLISH', ch, head .. ' ' .. tok .. ' ' .. f('%d %d %d', start, start - now, hexp - now))
      return 1
    end
  end
end

-- The general path: the helpers of common.lua are inserted here.
-- @common
local now = now_ms(t)
load(now)
queued = waiting(now, queued)
local res = 0
local held = H[rid]
if held then
  if token ~= 0 and held[1] ~= token then return -1 end
  unhold(rid)
  began(since, delay) -- before pump grants the freed slot
  res = 1
elseif queued > 0 and redis.call('ZREM', KEYS[2], rid) == 1 then
  redis.call('ZREM', KEYS[4], rid)
  redis.call('HDEL', KEYS[3], rid)
  queued = queued - 1
  res = 2
end
queued = pump(now, queued)
flush(now, queued)
return res

-- acquire.lua: take a slot now, or join the FIFO queue; also a waiter's heartbeat.
-- KEYS: see common.lua (meta, queue, params, alive).
-- ARGV[1] rid        request id, unique per request; makes the script idempotent under retries
-- ARGV[2] limit      leases at once (>= 1)
-- ARGV[3] delay      ms between consecutive starts
-- ARGV[4] lease      holder lease, ms
-- ARGV[5] ttl        waiter TTL, ms: a waiter not heard from for this long leaves the queue
-- ARGV[6] maxqueue   waiters at most; a newcomer beyond it is refused
-- ARGV[7] channel    pub/sub channel on which this client receives handed-off grants
-- ARGV[8] heartbeat  ms; upper bound of the recheck hint
-- Reply: {1, token, start, wait, ttl}  granted: start absolute (server ms), wait and ttl relative to now
--        {0, position, recheck}         queued (or still queued): recheck = ms until worth asking again
--        {-1, queued}                   queue full
local rid = ARGV[1]
-- Numbers are read as s + 0, not tonumber(s): Lua 5.1's tonumber parses a string twice (strtod
-- each time), and those parses were about a tenth of these scripts' Redis CPU.
local limit, delay, lease = ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0

-- The fast path: nobody queued, rid not yet a holder, and room for one more under this caller's
-- limit and the smallest limit of the holders (lmin), which is most acquires. It grants as the
-- general path below would (see grant in common.lua), in five calls (at most three to find that it
-- does not apply) and without common.lua's helpers. It does not look at the holders one by one:
-- meta's n counts them (exact, or too high after a holder's lease ran out: the general path then
-- drops it and corrects n; never too low) and lmin is at most the smallest limit among them (exact
-- after the general path; a holder leaving only raises the true smallest), so both can only send a
-- caller to the general path when it had room, never grant one that had none. A holder whose lease
-- ran out therefore stays in meta until the general path runs, which it does at the latest when
-- those holders fill the limit. It writes only the fields that change (the gate's next and last
-- are one string when there is no delay; lmin is rewritten only when it moves).
local t = redis.call('TIME')
local queued = redis.call('ZCARD', KEYS[2])
local own = '=' .. rid
local m = queued == 0 and redis.call('HMGET', KEYS[1], 'n', 'tok', 'next', 'last', 'hz', 'lmin', own)
do
  local n = m and not m[7] and (m[1] or 0) + 0
  local lmin = n and n > 0 and (m[6] or 0) + 0
  if n and (n == 0 or (n < limit and n < lmin)) then
    local now = t[1] * 1000 + math.floor(t[2] / 1000)
    local start = math.max(now, (m[3] or 0) + 0)
    if m[4] and delay > 0 then start = math.max(start, m[4] + delay) end
    local token, exp = (m[2] or 0) + 1, start + lease
    local f = string.format
    local last = f('%d', start)
    local w = {'n', f('%d', n + 1), 'tok', f('%d', token), 'next', delay > 0 and f('%d', start + delay) or last,
      'last', last, 'limit', ARGV[2], 'delay', ARGV[3], own, f('%d %d %d %d', token, limit, start, exp)}
    if lmin and lmin > limit then -- a stricter newcomer lowers lmin
      w[#w + 1] = 'lmin'
      w[#w + 1] = ARGV[2]
    elseif not lmin and m[6] ~= ARGV[2] then -- the first holder sets it (a string compare: both are %d)
      w[#w + 1] = 'lmin'
      w[#w + 1] = ARGV[2]
    end
    local hz, at = m[5] and m[5] + 0, nil
    if not hz or math.max(exp, start + delay) + 1000 > hz then
      at = f('%d', (math.floor(math.max(exp, start + delay) / 1000) + 2) * 1000)
      w[#w + 1] = 'hz'
      w[#w + 1] = at
    end
    redis.call('HSET', KEYS[1], unpack(w))
    if at then redis.call('PEXPIREAT', KEYS[1], at) end
    return {1, token, start, start - now, exp - now}
  end
end

-- The arrival: under contention most acquires come to a full key with a queue, and join it. This
-- queues rid as the general path below would, in eight calls and without loading meta whole, when
-- rid is new (neither a holder nor queued), the queue has room, every key already expires after the
-- new waiter's deadline, and the key is full for rid and for everyone (n at least rid's limit and
-- lmin), so pump would grant nobody. n counts a holder whose lease ran out until the general path
-- drops it; the recheck hint is then the heartbeat, at which the waiter's next call runs the general
-- path (the general path's hint is the earliest lease's end).
if queued > 0 then
  local ttl, maxq, heartbeat = ARGV[5] + 0, ARGV[6] + 0, ARGV[8] + 0
  m = redis.call('HMGET', KEYS[1], 'n', 'lmin', 'hz', 'seq', own)
  local n, now = (m[1] or 0) + 0, t[1] * 1000 + math.floor(t[2] / 1000)
  if not m[5] and queued < maxq and n >= limit and n >= (m[2] or 0) + 0 and now + ttl + 1000 <= (m[3] or 0) + 0
    and not redis.call('ZSCORE', KEYS[2], rid) then
    local f = string.format
    local seq = (m[4] or 0) + 1
    redis.call('HSET', KEYS[1], 'seq', f('%d', seq))
    redis.call('ZADD', KEYS[2], f('%d', -seq), rid)
    redis.call('HSET', KEYS[3], rid, ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[7])
    redis.call('ZADD', KEYS[4], f('%d', -(now + ttl)), rid)
    return {0, queued + 1, heartbeat}
  end
end

-- The general path: the helpers of common.lua are inserted here.
-- @common
local ttl, maxq, heartbeat = ARGV[5] + 0, ARGV[6] + 0, ARGV[8] + 0
local now = now_ms(t)
load(now)
queued = waiting(now, queued)

local function granted()
  local h = H[rid]
  if not h then return nil end
  return {1, h[1], h[3], h[3] - now, h[4] - now}
end

local r = granted()
if r then
  flush(now, queued)
  return r
end

if queued > 0 and redis.call('ZSCORE', KEYS[2], rid) then
  redis.call('ZADD', KEYS[4], fmt(-(now + ttl)), rid)
  needs(now + ttl)
  queued = pump(now, queued)
  flush(now, queued)
  r = granted()
  if r then return r end
  return {0, redis.call('ZREVRANK', KEYS[2], rid) + 1, recheck(now, heartbeat)}
end

queued = pump(now, queued)
if queued == 0 and room(limit) then
  local token, start, exp = grant(rid, limit, delay, lease, now)
  flush(now, queued)
  return {1, token, start, start - now, exp - now}
end
if queued >= maxq then
  flush(now, queued)
  return {-1, queued}
end
local seq = num('seq') + 1
set('seq', fmt(seq))
redis.call('ZADD', KEYS[2], fmt(-seq), rid)
redis.call('HSET', KEYS[3], rid, fmt(limit) .. ' ' .. fmt(delay) .. ' ' .. fmt(lease) .. ' ' .. fmt(ttl) .. ' ' .. ARGV[7])
redis.call('ZADD', KEYS[4], fmt(-(now + ttl)), rid)
needs(now + ttl)
fresh_queue = queued == 0
flush(now, queued + 1)
return {0, queued + 1, recheck(now, heartbeat)}

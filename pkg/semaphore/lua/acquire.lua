-- acquire.lua: take a slot now, or join the FIFO queue; also a waiter's heartbeat.
-- KEYS: see common.lua (holders, grants, queue, params, alive, meta).
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
local limit, delay, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, maxq, heartbeat = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8])
local now = now_ms()
local queued = purge(now)

local function granted()
  local token, _, start = grant_fields(rid)
  if not token then return nil end
  local exp = tonumber(redis.call('ZSCORE', KEYS[1], rid))
  return {1, token, start, start - now, exp - now}
end

local r = granted()
if r then return r end

if queued > 0 and redis.call('ZSCORE', KEYS[3], rid) then
  redis.call('ZADD', KEYS[5], fmt(now + ttl), rid)
  needs(now + ttl)
  queued = pump(now, queued)
  touch()
  r = granted()
  if r then return r end
  return {0, redis.call('ZRANK', KEYS[3], rid) + 1, recheck(now, heartbeat)}
end

queued = pump(now, queued)
if queued == 0 and room(limit) then
  local token, start, exp = grant(rid, limit, delay, lease, now)
  touch()
  return {1, token, start, start - now, exp - now}
end
if queued >= maxq then
  touch()
  return {-1, queued}
end
local seq = redis.call('HINCRBY', KEYS[6], 'seq', 1)
redis.call('ZADD', KEYS[3], fmt(seq), rid)
redis.call('HSET', KEYS[4], rid, fmt(limit) .. ' ' .. fmt(delay) .. ' ' .. fmt(lease) .. ' ' .. fmt(ttl) .. ' ' .. ARGV[7])
redis.call('ZADD', KEYS[5], fmt(now + ttl), rid)
needs(now + ttl)
if queued == 0 then fresh[#fresh + 1] = 3; fresh[#fresh + 1] = 4; fresh[#fresh + 1] = 5 end
touch()
return {0, queued + 1, recheck(now, heartbeat)}

-- common.lua: helpers prepended to every script of pkg/semaphore (not a script on its own).
--
-- The keys of one semaphore key, all sharing one hash tag so every script runs on Redis Cluster:
--   KEYS[1] holders  ZSET  rid -> lease expiry (ms, Redis server time)
--   KEYS[2] grants   HASH  rid -> "token limit start"   (one field per holder)
--   KEYS[3] queue    ZSET  rid -> arrival sequence      (FIFO order)
--   KEYS[4] params   HASH  rid -> "limit delay lease ttl channel" of a waiter
--   KEYS[5] alive    ZSET  rid -> waiter deadline (ms); a waiter that stops heartbeating is dropped
--   KEYS[6] meta     HASH  seq, tok, next (earliest next start), last (last start), bo (backoff until),
--                          bl (backoff level), bid (last backoff event id), limit, delay (last granted),
--                          hz (the expiry every existing key was given, ms)
-- Every time is read from TIME and every number written with string.format('%d'): '%.14g' would
-- truncate tokens and epoch milliseconds.

local function fmt(n) return string.format('%d', n) end

-- What this script changed, for touch: the latest time it wrote (a lease, waiter deadline, gate or
-- backoff) and the keys it created (which have no expiry yet).
local horizon = 0
local fresh = {}
local room_n = 0 -- holders counted by the last room() call

local function needs(t) if t > horizon then horizon = t end end

local now_us = 0 -- the same reading in microseconds (epoch us fit a double's 53 bits exactly)

local function now_ms()
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  needs(now)
  return now
end

local function grant_fields(rid)
  local g = redis.call('HGET', KEYS[2], rid)
  if not g then return nil end
  local token, limit, start = string.match(g, '^(%d+) (%d+) (%d+)$')
  return tonumber(token), tonumber(limit), tonumber(start)
end

-- purge drops holders whose lease ran out and waiters that stopped heartbeating. It returns the
-- number of waiters left, so the common case (nobody waiting) skips all queue work.
local function purge(now)
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
  if #dead > 0 then
    redis.call('ZREM', KEYS[1], unpack(dead))
    redis.call('HDEL', KEYS[2], unpack(dead))
  end
  local queued = redis.call('ZCARD', KEYS[3])
  if queued == 0 then return 0 end
  local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1000)
  if #gone > 0 then
    redis.call('ZREM', KEYS[5], unpack(gone))
    redis.call('ZREM', KEYS[3], unpack(gone))
    redis.call('HDEL', KEYS[4], unpack(gone))
  end
  return queued - #gone
end

-- room reports whether one more holder fits: under the candidate's own limit and under the limit of
-- every current holder, so no holder ever shares the key with more than its own limit allows.
local function room(limit)
  local n = redis.call('ZCARD', KEYS[1])
  room_n = n
  if n >= limit then return false end
  if n == 0 then return true end
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
    local l = tonumber(string.match(v, '^%d+ (%d+)'))
    if l and n >= l then return false end
  end
  return true
end

-- grant makes rid a holder. Its start is the later of now, the gate (previous start + its delay, or
-- a backoff) and the previous start + this caller's own delay, so consecutive starts are at least
-- the larger of the two delays apart. ttl bounds the first lease of a handed-off grant.
-- It is called right after room() said yes.
local function grant(rid, limit, delay, ttl, now)
  if room_n == 0 then fresh[#fresh + 1] = 1; fresh[#fresh + 1] = 2 end
  room_n = room_n + 1
  local m = redis.call('HMGET', KEYS[6], 'next', 'last')
  local start = math.max(now, tonumber(m[1]) or 0)
  if m[2] then start = math.max(start, tonumber(m[2]) + delay) end
  local token = redis.call('HINCRBY', KEYS[6], 'tok', 1)
  redis.call('HSET', KEYS[6], 'next', fmt(start + delay), 'last', fmt(start), 'limit', fmt(limit), 'delay', fmt(delay))
  local exp = start + ttl
  needs(exp)
  needs(start + delay)
  redis.call('ZADD', KEYS[1], fmt(exp), rid)
  redis.call('HSET', KEYS[2], rid, fmt(token) .. ' ' .. fmt(limit) .. ' ' .. fmt(start))
  return token, start, exp
end

-- began moves the gate after a holder's actual start, which it reports as the microseconds elapsed
-- since then on its own clock (-1: not begun). The start was no later than now_us - since + 1 (since
-- is rounded down; the report's travel only makes the start it implies later), here rounded up to
-- the ms, so last and next move to at least that and that + the holder's delay: a grant made after
-- this, in this script or a later one, starts no sooner than the delay after the start the origin
-- actually saw. Nothing moves back.
local function began(since, delay)
  if since < 0 then return end
  local at = math.ceil((now_us - since + 1) / 1000)
  local m = redis.call('HMGET', KEYS[6], 'next', 'last')
  if at > (tonumber(m[2]) or 0) then redis.call('HSET', KEYS[6], 'last', fmt(at)) end
  if at + delay > (tonumber(m[1]) or 0) then
    redis.call('HSET', KEYS[6], 'next', fmt(at + delay))
    needs(at + delay)
  end
end

-- pump hands free slots to the head of the queue, in arrival order, and pushes each grant to its
-- waiter's channel: "rid token start wait ttl" (start absolute, wait and ttl relative to now, ms).
-- queued is the queue's length; pump returns it as it leaves it.
local function pump(now, queued)
  while queued > 0 do
    local head = redis.call('ZRANGE', KEYS[3], 0, 0)
    local rid = head[1]
    local p = redis.call('HGET', KEYS[4], rid)
    local limit, delay, lease, ttl, ch
    if p then limit, delay, lease, ttl, ch = string.match(p, '^(%d+) (%d+) (%d+) (%d+) (.+)$') end
    if not ch then
      redis.call('ZREM', KEYS[3], rid)
      redis.call('ZREM', KEYS[5], rid)
      redis.call('HDEL', KEYS[4], rid)
    else
      limit = tonumber(limit)
      if not room(limit) then return queued end
      redis.call('ZREM', KEYS[3], rid)
      redis.call('ZREM', KEYS[5], rid)
      redis.call('HDEL', KEYS[4], rid)
      -- A waiter may have died since its last heartbeat: its first lease lasts no longer than its
      -- waiter TTL, and the live client's first refresh extends it to the full lease.
      local token, start, exp = grant(rid, limit, tonumber(delay), math.min(tonumber(lease), tonumber(ttl)), now)
      redis.call('PUBLISH', ch, rid .. ' ' .. fmt(token) .. ' ' .. fmt(start) .. ' ' .. fmt(start - now) .. ' ' .. fmt(exp - now))
    end
    queued = queued - 1
  end
  return 0
end

-- touch keeps every key alive until the key's horizon: the latest lease, waiter deadline, gate or
-- backoff, plus one to two seconds. An idle key thus leaves nothing behind, and the gate outlives
-- idleness. Every existing key carries the expiry recorded in meta's hz; only when this script wrote
-- something later than hz - 1s are all six extended (to a whole second, so that happens about once a
-- second per busy key); otherwise only the keys this script created get hz.
local function touch()
  local hz = tonumber(redis.call('HGET', KEYS[6], 'hz'))
  if hz and horizon + 1000 <= hz then
    for _, i in ipairs(fresh) do redis.call('PEXPIREAT', KEYS[i], fmt(hz)) end
    return
  end
  local at = fmt((math.floor(horizon / 1000) + 2) * 1000)
  redis.call('HSET', KEYS[6], 'hz', at)
  for i = 1, 6 do redis.call('PEXPIREAT', KEYS[i], at) end
end

-- settle is touch for a key left with no holders and no waiters: only meta remains, and it has
-- to outlive the gate and the backoff only, so its expiry may shrink to that.
local function settle(now)
  local m = redis.call('HMGET', KEYS[6], 'next', 'bo', 'hz')
  if not m[3] then return end -- meta does not exist (e.g. a replayed release of an expired key)
  local at = fmt(math.max(now, tonumber(m[1]) or 0, tonumber(m[2]) or 0) + 1000)
  redis.call('HSET', KEYS[6], 'hz', at)
  redis.call('PEXPIREAT', KEYS[6], at)
end

-- recheck is how long a waiter may sleep before the earliest lease could run out (at least 1 ms).
local function recheck(now, heartbeat)
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then return math.max(1, math.min(heartbeat, tonumber(first[2]) - now + 1)) end
  return heartbeat
end

-- common.lua: helpers prepended to every script of pkg/semaphore (not a script on its own).
--
-- The keys of one semaphore key, all sharing one hash tag so every script runs on Redis Cluster:
--   KEYS[1] meta    HASH  the key's whole uncontended state, read in one HGETALL:
--                         seq, tok, next (earliest next start), last (last start), bo (backoff until),
--                         bl (backoff level), bid (last backoff event id), limit, delay (last granted),
--                         hz (the expiry every existing key was given, ms), n (holders: exact, or too
--                         high while an expired holder is not yet dropped), lmin (while n > 0: at most
--                         the smallest limit among the holders), and one field per holder:
--                         '=' .. rid -> "token limit start expiry" (ms, Redis server time)
--   KEYS[2] queue   ZSET  rid -> minus its arrival sequence (FIFO: the oldest is the last member)
--   KEYS[3] params  HASH  rid -> "limit delay lease ttl channel" of a waiter
--   KEYS[4] alive   ZSET  rid -> minus its waiter deadline (ms); a waiter that stops heartbeating is dropped
-- The two sorted sets hold negated scores because a small one is a listpack that ZADD scans from the
-- head, parsing each score, until it finds a larger one: an arrival or a heartbeat, whose score is
-- always the newest, then goes in at the head at once instead of after a scan of the whole queue
-- (measured: about a tenth of a contended acquire+release's Redis CPU with 60 waiters).
-- A key nobody waits for exists as meta only. Holders are at most the key's limit, so the HGETALL
-- that reads meta whole is small; acquire and leave take a fast path without it (see there).
-- Every time is read from TIME and every number written with string.format('%d'): '%.14g' would
-- truncate tokens and epoch milliseconds.
--
-- Scripts read meta once (load), change the copy in M and H, and write the changes back once at the
-- end (flush): every read after a write in the same script sees the write.

local function fmt(n) return string.format('%d', n) end

local M = {}      -- meta's fields as loaded, with this script's writes applied
local H = {}      -- holders: rid -> {token, limit, start, exp}
local nh = 0      -- number of holders in H
local W = {}      -- meta fields to write: field -> string
local D = {}      -- meta fields to delete: field -> true
local horizon = 0 -- the latest time this script wrote (a lease, waiter deadline, gate or backoff)
local fresh_queue = false -- this script created the queue keys (they have no expiry yet)
local now_us = 0  -- the TIME reading in microseconds (epoch us fit a double's 53 bits exactly)

local function needs(t) if t > horizon then horizon = t end end

-- now_ms reads TIME, or takes the reading t a script's fast path already made.
local function now_ms(t)
  t = t or redis.call('TIME')
  local s, us = t[1] + 0, t[2] + 0
  now_us = s * 1000000 + us
  local now = s * 1000 + math.floor(us / 1000)
  needs(now)
  return now
end

local function set(f, v) M[f] = v; W[f] = v; D[f] = nil end
-- num reads a number field; as s + 0, since Lua 5.1's tonumber(s) parses s twice.
local function num(f) return (M[f] or 0) + 0 end

local function hold(rid, token, limit, start, exp)
  if not H[rid] then nh = nh + 1 end
  H[rid] = {token, limit, start, exp}
  set('=' .. rid, fmt(token) .. ' ' .. fmt(limit) .. ' ' .. fmt(start) .. ' ' .. fmt(exp))
end

local function unhold(rid)
  if H[rid] then nh = nh - 1 end
  H[rid] = nil
  local f = '=' .. rid
  M[f] = nil; W[f] = nil; D[f] = true
end

-- load reads meta and drops holders whose lease ran out.
local function load(now)
  local a = redis.call('HGETALL', KEYS[1])
  for i = 1, #a, 2 do
    local f, v = a[i], a[i + 1]
    M[f] = v
    if string.byte(f, 1) == 61 then -- '='
      local token, limit, start, exp = string.match(v, '^(%d+) (%d+) (%d+) (%d+)$')
      local rid = string.sub(f, 2)
      exp = exp and exp + 0
      if exp and exp > now then
        H[rid] = {token + 0, limit + 0, start + 0, exp}
        nh = nh + 1
      else
        unhold(rid)
      end
    end
  end
end

-- waiting drops waiters that stopped heartbeating and returns the number left, so the common case
-- (nobody waiting) costs one ZCARD, or none when the caller already counted the queue (queued).
local function waiting(now, queued)
  queued = queued or redis.call('ZCARD', KEYS[2])
  if queued == 0 then return 0 end
  -- deadline <= now, that is -deadline >= -now: the oldest deadlines, at the end of the set
  local gone = redis.call('ZREVRANGEBYSCORE', KEYS[4], '+inf', fmt(-now), 'LIMIT', 0, 1000)
  if #gone > 0 then
    redis.call('ZREM', KEYS[4], unpack(gone))
    redis.call('ZREM', KEYS[2], unpack(gone))
    redis.call('HDEL', KEYS[3], unpack(gone))
  end
  return queued - #gone
end

-- room reports whether one more holder fits: under the candidate's own limit and under the limit of
-- every current holder, so no holder ever shares the key with more than its own limit allows.
local function room(limit)
  if nh >= limit then return false end
  for _, h in pairs(H) do
    if nh >= h[2] then return false end
  end
  return true
end

-- grant makes rid a holder. Its start is the later of now, the gate (previous start + its delay, or
-- a backoff) and the previous start + this caller's own delay, so consecutive starts are at least
-- the larger of the two delays apart. A caller without a delay asks nothing of the previous start
-- (which began may have rounded up to the next ms): only the gate holds it back.
-- ttl bounds the first lease of a handed-off grant.
-- It is called right after room() said yes.
local function grant(rid, limit, delay, ttl, now)
  local start = math.max(now, num('next'))
  if delay > 0 and M['last'] then start = math.max(start, num('last') + delay) end
  local token = num('tok') + 1
  set('tok', fmt(token))
  set('next', fmt(start + delay))
  set('last', fmt(start))
  set('limit', fmt(limit))
  set('delay', fmt(delay))
  local exp = start + ttl
  needs(exp)
  needs(start + delay)
  hold(rid, token, limit, start, exp)
  return token, start, exp
end

-- began moves the gate after a holder's actual start, which it reports as the microseconds elapsed
-- since then on its own clock (-1: not begun). The start was no later than now_us - since + 1 (since
-- is rounded down; the report's travel only makes the start it implies later), here rounded up to
-- the ms, so last and next move to at least that and that + the holder's delay: a grant made after
-- this, in this script or a later one, starts no sooner than the delay after the start the origin
-- actually saw. Nothing moves back. A holder without a delay leaves the gate alone: the start it
-- implies is already past.
local function began(since, delay)
  if since < 0 then return end
  local at = math.ceil((now_us - since + 1) / 1000)
  if at > num('last') then set('last', fmt(at)) end
  if delay > 0 and at + delay > num('next') then
    set('next', fmt(at + delay))
    needs(at + delay)
  end
end

-- dequeue takes rid out of the three queue structures.
local function dequeue(rid)
  redis.call('ZREM', KEYS[2], rid)
  redis.call('ZREM', KEYS[4], rid)
  redis.call('HDEL', KEYS[3], rid)
end

-- pump hands free slots to the head of the queue, in arrival order, and pushes each grant to its
-- waiter's channel: "rid token start wait ttl" (start absolute, wait and ttl relative to now, ms).
-- queued is the queue's length; pump returns it as it leaves it.
local function pump(now, queued)
  for _, h in pairs(H) do -- a holder whose limit is reached admits nobody: spare the queue reads
    if nh >= h[2] then return queued end
  end
  while queued > 0 do
    local rid = redis.call('ZRANGE', KEYS[2], -1, -1)[1]
    local p = redis.call('HGET', KEYS[3], rid)
    local limit, delay, lease, ttl, ch
    if p then limit, delay, lease, ttl, ch = string.match(p, '^(%d+) (%d+) (%d+) (%d+) (.+)$') end
    if not ch then
      dequeue(rid)
    else
      limit = limit + 0
      if not room(limit) then return queued end
      dequeue(rid)
      -- A waiter may have died since its last heartbeat: its first lease lasts no longer than its
      -- waiter TTL, and the live client's first refresh extends it to the full lease.
      local token, start, exp = grant(rid, limit, delay + 0, math.min(lease + 0, ttl + 0), now)
      redis.call('PUBLISH', ch, rid .. ' ' .. fmt(token) .. ' ' .. fmt(start) .. ' ' .. fmt(start - now) .. ' ' .. fmt(exp - now))
    end
    queued = queued - 1
  end
  return 0
end

-- flush writes this script's changes to meta and keeps every key alive until the key's horizon: the
-- latest lease, waiter deadline, gate or backoff, plus one to two seconds. An idle key thus leaves
-- nothing behind, and the gate outlives idleness. Every existing key carries the expiry recorded in
-- hz; only when this script wrote something later than hz - 1s are they all extended (to a whole
-- second, so that happens about once a second per busy key); otherwise only queue keys this script
-- created get hz. With no holders and no waiters left (queued == 0), only meta remains, and it has to
-- outlive the gate and the backoff only, so its expiry may shrink to that.
local function flush(now, queued)
  if nh ~= num('n') then set('n', fmt(nh)) end
  local lmin
  for _, h in pairs(H) do
    if not lmin or h[2] < lmin then lmin = h[2] end
  end
  if lmin and lmin ~= num('lmin') then set('lmin', fmt(lmin)) end
  local del = {}
  for f in pairs(D) do del[#del + 1] = f end
  if #del > 0 then redis.call('HDEL', KEYS[1], unpack(del)) end
  local hz, at, all = M['hz'] and M['hz'] + 0, nil, false
  if queued == 0 and nh == 0 then
    at = math.max(now, num('next'), num('bo')) + 1000
    if at == hz or not next(W) and not M['tok'] then at = nil end -- unchanged, or meta is gone
  elseif not hz or horizon + 1000 > hz then
    at, all = (math.floor(horizon / 1000) + 2) * 1000, queued > 0
  end
  if at then set('hz', fmt(at)) end
  local args = {}
  for f, v in pairs(W) do args[#args + 1] = f; args[#args + 1] = v end
  if #args > 0 then redis.call('HSET', KEYS[1], unpack(args)) end
  if at then redis.call('PEXPIREAT', KEYS[1], fmt(at)) end
  if all or (fresh_queue and queued > 0) then
    local q = fmt(at or hz)
    for i = 2, 4 do redis.call('PEXPIREAT', KEYS[i], q) end
  end
end

-- recheck is how long a waiter may sleep before the earliest lease could run out (at least 1 ms).
local function recheck(now, heartbeat)
  local first
  for _, h in pairs(H) do
    if not first or h[4] < first then first = h[4] end
  end
  if first then return math.max(1, math.min(heartbeat, first - now + 1)) end
  return heartbeat
end

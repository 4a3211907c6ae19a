-- publish.lua: one sidecar's report of the hosts it used and its load per host, about once a second.
-- KEYS[1] active    ZSET  key -> last use (server ms), every sidecar's; trimmed by age and size
-- KEYS[2] sidecars  ZSET  id -> last report (server ms)
-- KEYS[3] load      HASH  key -> "inflight starting waiting delaySource robots" of this sidecar only,
--                         replaced whole by each report
-- All three share one hash tag, so the script runs on Redis Cluster.
-- ARGV[1] id        this sidecar's id
-- ARGV[2] window    ms an active host stays listed after its last use; also the active set's expiry
-- ARGV[3] max       active hosts kept at most (the least recently used are dropped)
-- ARGV[4] ttl       ms a load report lives (a sidecar that stops reporting drops out after it)
-- ARGV[5] n         how many keys follow
-- ARGV[6 .. 5+n]    keys used since the last report
-- ARGV[6+n ..]      load: pairs of key, value
-- Reply: the number of active hosts listed
local id, window, max, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local snow = string.format('%d', now)
for i = 6, 5 + n, 500 do
  local args = {}
  for j = i, math.min(i + 499, 5 + n) do
    args[#args + 1] = snow
    args[#args + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local size = redis.call('ZCARD', KEYS[1])
if size > max then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - max - 1)
  size = max
end
if size > 0 then redis.call('PEXPIRE', KEYS[1], window) end
redis.call('DEL', KEYS[3])
for i = 6 + n, #ARGV - 1, 1000 do
  local args = {}
  for j = i, math.min(i + 999, #ARGV - 1), 2 do
    args[#args + 1] = ARGV[j]
    args[#args + 1] = ARGV[j + 1]
  end
  redis.call('HSET', KEYS[3], unpack(args))
end
if #ARGV >= 7 + n then redis.call('PEXPIRE', KEYS[3], ttl) end
redis.call('ZADD', KEYS[2], snow, id)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now - ttl))
redis.call('PEXPIRE', KEYS[2], ttl)
return size

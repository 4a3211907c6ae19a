-- observe.lua: read the live state of a batch of keys (read-only; writes nothing).
-- Not prepended with common.lua: it shares no helper and must not touch expiries.
-- KEYS: four per semaphore key, in this order: holders, grants, alive, meta (see common.lua). On
--       Redis Cluster every key of one call shares one slot (the caller groups keys by slot).
-- ARGV: none.
-- Reply: {now (server ms), then per key: in flight (started, lease running), starting (granted, start
--        still ahead), waiting (queued, heartbeat alive), limit, delay (ms), next start in (ms, 0 = open),
--        backoff left (ms), backoff level}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
local function left(v) return math.max(0, (tonumber(v) or 0) - now) end
for i = 1, #KEYS, 4 do
  local live = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. string.format('%d', now), '+inf', 'LIMIT', 0, 10000)
  local inflight, starting = 0, 0
  if #live > 0 then
    for _, g in ipairs(redis.call('HMGET', KEYS[i + 1], unpack(live))) do
      local start = g and tonumber(string.match(g, '^%d+ %d+ (%d+)$'))
      if start and start > now then starting = starting + 1 else inflight = inflight + 1 end
    end
  end
  local waiting = redis.call('ZCOUNT', KEYS[i + 2], '(' .. string.format('%d', now), '+inf')
  local m = redis.call('HMGET', KEYS[i + 3], 'limit', 'delay', 'next', 'bo', 'bl')
  out[#out + 1] = inflight
  out[#out + 1] = starting
  out[#out + 1] = waiting
  out[#out + 1] = tonumber(m[1]) or 0
  out[#out + 1] = tonumber(m[2]) or 0
  out[#out + 1] = left(m[3])
  out[#out + 1] = left(m[4])
  out[#out + 1] = tonumber(m[5]) or 0
end
return out

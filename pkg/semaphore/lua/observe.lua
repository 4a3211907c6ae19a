-- observe.lua: read the live state of a batch of keys (read-only; writes nothing).
-- Not prepended with common.lua: it shares no helper and must not touch expiries.
-- KEYS: four per semaphore key, in this order: holders, grants, alive, meta. The holders and grants
--       keys are no longer written (the holders live in meta, see common.lua) and are not read; the
--       caller still names them. On Redis Cluster every key of one call shares one slot (the caller
--       groups keys by slot).
-- ARGV: none.
-- Reply: {now (server ms), then per key: in flight (started, lease running), starting (granted, start
--        still ahead), waiting (queued, heartbeat alive), limit, delay (ms), next start in (ms, 0 = open),
--        backoff left (ms), backoff level}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
for i = 1, #KEYS, 4 do
  local m = {}
  local inflight, starting = 0, 0
  local a = redis.call('HGETALL', KEYS[i + 3])
  for j = 1, #a, 2 do
    local f, v = a[j], a[j + 1]
    if string.byte(f, 1) == 61 then -- '=' .. rid -> "token limit start expiry"
      local start, exp = string.match(v, '^%d+ %d+ (%d+) (%d+)$')
      if exp and tonumber(exp) > now then
        if tonumber(start) > now then starting = starting + 1 else inflight = inflight + 1 end
      end
    else
      m[f] = v
    end
  end
  local function left(f) return math.max(0, (tonumber(m[f]) or 0) - now) end
  out[#out + 1] = inflight
  out[#out + 1] = starting
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i + 2], '-inf', '(' .. string.format('%d', -now)) -- deadline > now (negated, see common.lua)
  out[#out + 1] = tonumber(m['limit']) or 0
  out[#out + 1] = tonumber(m['delay']) or 0
  out[#out + 1] = left('next')
  out[#out + 1] = left('bo')
  out[#out + 1] = tonumber(m['bl']) or 0
end
return out

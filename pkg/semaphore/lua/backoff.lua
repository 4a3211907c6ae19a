-- backoff.lua: push the key's next start later for every client (upstream 429/503).
-- KEYS: see common.lua.
-- ARGV[1] retry  ms the upstream asked for (Retry-After), or 0 for exponential backoff
-- ARGV[2] base   ms, first step of the exponential backoff
-- ARGV[3] max    ms, cap of any backoff; a key quiet for this long after its backoff starts again at base
-- ARGV[4] id     event id, so a retried call is not counted twice
-- Reply: {applied ms, level}
local retry, base, max, id = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = now_ms()
load(now)
local bo, level = num('bo'), num('bl')
if M['bid'] == id then return {math.max(0, bo - now), level} end
if bo + max < now then level = 0 end
level = level + 1
local d = retry
if d <= 0 then d = base * math.pow(2, math.min(level - 1, 40)) end
d = math.floor(math.min(d, max))
local untl = now + d
if untl > bo then bo = untl end
set('bo', fmt(bo))
set('bl', fmt(level))
set('bid', id)
set('next', fmt(math.max(num('next'), untl)))
needs(untl)
flush(now, redis.call('ZCARD', KEYS[2]))
return {d, level}

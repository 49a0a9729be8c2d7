-- budget_reserve.lua: reserve a job's estimate on every budget counter it is held against,
-- all or nothing, and only if each stays within its limit.
-- KEYS[1]   built set             Keys.budget_built(): budget ids rebuilt from the ledger
-- KEYS[2]   limits hash           Keys.budget_limits(): budget id -> override (nano-USD)
-- KEYS[3]   reservation record    Keys.budget_reservation(job_id)
-- KEYS[3+i] counter hash of hold i  Keys.budget_counter(counter): fields spent, reserved
-- ARGV[1]   estimate (nano-USD, integer >= 0)
-- ARGV[2]   record TTL (s)
-- ARGV[3i], ARGV[3i+1], ARGV[3i+2]  hold i: budget id, config limit (nano-USD), counter TTL (s)
-- Returns {status, index, ...}:
--   'ok', 0, then spent, reserved, limit of each hold (nano-USD) after the reservation. Also
--        the reply when the job already holds a reservation: then nothing changed.
--   'refused', i, then the usage of each hold: hold i (the first that does not fit) would go
--        over its limit (the override in KEYS[2] if set, else the config's); nothing changed.
--   'not_built', 0, then the ids of the holds' budgets missing from KEYS[1]; nothing changed.
-- The record (hash): est (nano-USD), held (JSON list of [counter key, expiry epoch s]),
-- call (running call key, '' for none), and orphans/o:<call>/done (budget_start.lua).

local holds = #KEYS - 3
local missing = {}
for i = 1, holds do
  if redis.call('SISMEMBER', KEYS[1], ARGV[3 * i]) == 0 then
    missing[#missing + 1] = ARGV[3 * i]
  end
end
if #missing > 0 then
  return {'not_built', 0, unpack(missing)}
end

local function usage()
  local out = {}
  for i = 1, holds do
    local raw = redis.call('HMGET', KEYS[3 + i], 'spent', 'reserved')
    local limit = redis.call('HGET', KEYS[2], ARGV[3 * i]) or ARGV[3 * i + 1]
    out[#out + 1] = tonumber(raw[1]) or 0
    out[#out + 1] = tonumber(raw[2]) or 0
    out[#out + 1] = tonumber(limit)
  end
  return out
end

if redis.call('EXISTS', KEYS[3]) == 1 and redis.call('HEXISTS', KEYS[3], 'done') == 0 then
  return {'ok', 0, unpack(usage())}
end

local est = tonumber(ARGV[1])
local before = usage()
for i = 1, holds do
  local spent, reserved, limit = before[3 * i - 2], before[3 * i - 1], before[3 * i]
  if spent + reserved + est > limit then
    return {'refused', i, unpack(before)}
  end
end

local now_s = tonumber(redis.call('TIME')[1])
local held = {}
for i = 1, holds do
  local ttl_s = tonumber(ARGV[3 * i + 2])
  redis.call('HINCRBY', KEYS[3 + i], 'reserved', ARGV[1])
  redis.call('HSETNX', KEYS[3 + i], 'spent', 0)
  redis.call('EXPIRE', KEYS[3 + i], ttl_s)
  held[i] = {KEYS[3 + i], now_s + ttl_s}
end
redis.call('HDEL', KEYS[3], 'done')
redis.call('HSET', KEYS[3], 'est', ARGV[1], 'held', cjson.encode(held), 'call', '')
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {'ok', 0, unpack(usage())}

-- budget_settle.lua: a provider call of a job ended; charge what it cost.
-- KEYS[1]   reservation record    Keys.budget_reservation(job_id) (see budget_reserve.lua)
-- KEYS[1+i] counter hash i of the instance that did the work (after a fallback these may
--           differ from the counters the reservation holds)
-- ARGV[1]   call key
-- ARGV[2]   actual cost (nano-USD, integer >= 0)
-- ARGV[3]   '1': final (the job is done), '0': the call failed, the job goes on
-- ARGV[4]   record TTL (s), refreshed when the record stays
-- ARGV[4+i] counter TTL of KEYS[1+i] (s)
-- Returns what happened:
--   'settled'   the running call: actual added to spent; final: the estimate left reserved
--               on the held counters and the record ended
--   'kept'      the running call, not final: actual added to spent, the call cleared, the
--               reservation kept for the next call
--   'late'      an orphaned call (budget_start.lua counted it as spent at its estimate):
--               its estimate comes off spent on the held counters, actual goes on
--   'untracked' no record, or a call the record does not know: actual added to spent only
-- An ended record that still knows orphaned calls stays (fields done, o:<call>) until
-- they settle or it expires. Sharp edge: the held counters are read from the record, not
-- passed in KEYS (see budget_start.lua); every budget key shares the {budget} hash tag.

local call, actual = ARGV[1], tonumber(ARGV[2])
for i = 2, #KEYS do
  bump(KEYS[i], 'spent', actual)
  redis.call('HSETNX', KEYS[i], 'reserved', 0)
  redis.call('EXPIRE', KEYS[i], ARGV[3 + i])
end

local rec = redis.call('HMGET', KEYS[1], 'est', 'held', 'call', 'orphans')
if not rec[2] then
  return 'untracked'
end
local held = cjson.decode(rec[2])

if rec[3] ~= call then
  local orphan = redis.call('HGET', KEYS[1], 'o:' .. call)
  if not orphan then
    return 'untracked'
  end
  for _, entry in ipairs(held) do
    bump(entry[1], 'spent', -tonumber(orphan))
    redis.call('EXPIREAT', entry[1], entry[2])
  end
  redis.call('HDEL', KEYS[1], 'o:' .. call)
  local left = redis.call('HINCRBY', KEYS[1], 'orphans', -1)
  if left <= 0 and redis.call('HEXISTS', KEYS[1], 'done') == 1 then
    redis.call('DEL', KEYS[1])
  end
  return 'late'
end

if ARGV[3] ~= '1' then
  redis.call('HSET', KEYS[1], 'call', '')
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 'kept'
end

for _, entry in ipairs(held) do
  bump(entry[1], 'reserved', -tonumber(rec[1]))
  redis.call('EXPIREAT', entry[1], entry[2])
end
if (tonumber(rec[4]) or 0) > 0 then
  redis.call('HSET', KEYS[1], 'done', 1, 'est', 0, 'call', '')
  redis.call('EXPIRE', KEYS[1], ARGV[4])
else
  redis.call('DEL', KEYS[1])
end
return 'settled'

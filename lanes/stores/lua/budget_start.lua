-- budget_start.lua: a provider call of a job starts; name it in the job's reservation record.
-- KEYS[1]   reservation record    Keys.budget_reservation(job_id) (see budget_reserve.lua)
-- KEYS[1+i] counter hash of hold i: used only when there is no record to hold on to
-- ARGV[1]   call key (unique per provider call of the job)
-- ARGV[2]   estimate of this call (nano-USD, integer >= 0)
-- ARGV[3]   record TTL (s), refreshed
-- ARGV[3+i] counter TTL of hold i (s)
-- ARGV[3+n+i] limit of hold i (nano-USD), n = number of holds
-- Returns 1 when an earlier call of the job was still running (it never settled: its worker
-- died mid-call). That call was billed, so its estimate moves from reserved to spent on the
-- held counters, the new estimate is reserved for this call, and the record remembers the
-- orphan (field o:<call> = its estimate) so a late settle corrects only the difference.
-- Returns 2, changing nothing, when there is no live record (the job was never admitted, or
-- its record is gone) and a hold is already spent: spent + reserved at or over its limit. A
-- job that was admitted keeps its record; one sent past the dispatcher does not get to spend.
-- Returns 0 otherwise: the call is named; with no record (or an ended one) a reservation of
-- the estimate is made on the holds (a budget with room left is not checked further).
-- Sharp edge: the held counters are read from the record, not passed in KEYS (reading the
-- record first from the client would not be atomic). Every budget key carries the {budget}
-- hash tag, so they all live in the one Redis Cluster slot this script runs in.

local call, est = ARGV[1], tonumber(ARGV[2])
local rec = redis.call('HMGET', KEYS[1], 'est', 'held', 'call', 'done')

local holds = #KEYS - 1
if not rec[2] or rec[4] then
  for i = 2, #KEYS do
    local used = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
    local limit = tonumber(ARGV[2 + holds + i])
    if (tonumber(used[1]) or 0) + (tonumber(used[2]) or 0) >= limit then
      return 2
    end
  end
  local now_s = tonumber(redis.call('TIME')[1])
  local held = {}
  for i = 2, #KEYS do
    local ttl_s = tonumber(ARGV[2 + i])
    bump(KEYS[i], 'reserved', est)
    redis.call('HSETNX', KEYS[i], 'spent', 0)
    redis.call('EXPIRE', KEYS[i], ttl_s)
    held[#held + 1] = {KEYS[i], now_s + ttl_s}
  end
  redis.call('HDEL', KEYS[1], 'done')
  redis.call('HSET', KEYS[1], 'est', ARGV[2], 'held', cjson.encode(held), 'call', call)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 0
end

local running = rec[3] or ''
if running == '' or running == call then
  redis.call('HSET', KEYS[1], 'call', call)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 0
end

local old = tonumber(rec[1])
for _, entry in ipairs(cjson.decode(rec[2])) do
  bump(entry[1], 'spent', old)
  bump(entry[1], 'reserved', est - old)
  redis.call('EXPIREAT', entry[1], entry[2])
end
redis.call('HSET', KEYS[1], 'est', ARGV[2], 'call', call, 'o:' .. running, rec[1])
redis.call('HINCRBY', KEYS[1], 'orphans', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1

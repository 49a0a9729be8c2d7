-- Take the jobs waiting to be batched on one (instance, model) into a new batch, when the
-- oldest has waited the gathering window or enough are waiting to fill a batch.
-- KEYS[1] gather zset (job id by arrival), KEYS[2] job id -> batch id, KEYS[3] job id ->
-- request bytes, KEYS[4] open batches (batch id -> record)
-- ARGV[1] batch id, ARGV[2] most requests, ARGV[3] most bytes, ARGV[4] window (s),
-- ARGV[5] now (s), ARGV[6] the record's JSON without its closing brace
-- Returns the job ids taken, or an empty list.
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return {} end
local most = tonumber(ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
if count < most and tonumber(ARGV[5]) - tonumber(first[2]) < tonumber(ARGV[4]) then
  return {}
end
local ids = redis.call('ZRANGE', KEYS[1], 0, most - 1)
local taken = {}
local bytes = 0
for _, id in ipairs(ids) do
  local size = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  if #taken > 0 and bytes + size > tonumber(ARGV[3]) then break end
  bytes = bytes + size
  redis.call('HSET', KEYS[2], id, ARGV[1])
  redis.call('ZREM', KEYS[1], id)
  taken[#taken + 1] = id
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[6] .. ',"members":' .. cjson.encode(taken) .. '}')
return taken

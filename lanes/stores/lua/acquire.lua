-- acquire.lua: reserve 1 request, input and output tokens and one concurrency lease, all or
-- nothing, on the server clock (TIME). Prepended with bucket_lib.lua.
-- KEYS[1]  limiter hash          Keys.limiter(instance, model_class)
-- KEYS[2]  leases sorted set     Keys.leases(instance): member lease id, score expiry (ms)
-- KEYS[3]  reservation marker    Keys.reservation(instance, lease_id)
-- ARGV[1]  lease id
-- ARGV[2]  lease TTL (ms)
-- ARGV[3]  marker TTL (ms), longer than the lease TTL so a late settle still corrects tokens
-- ARGV[4]  requests per minute        (0 = unlimited)
-- ARGV[5]  input tokens per minute    (0 = unlimited)
-- ARGV[6]  output tokens per minute   (0 = unlimited)
-- ARGV[7]  max concurrent leases      (0 = unlimited; leases are still recorded)
-- ARGV[8]  input tokens to reserve
-- ARGV[9]  output tokens to reserve
-- ARGV[10] cap on the reported wait (ms)
-- ARGV[11] reserve: share of each bucket that must stay in it after this reservation, and of
--          the concurrency limit (slots, rounded up, one slot left at least) that must stay
--          free (batch work leaves it to interactive work; 0: none)
-- Returns {status, reason, wait_ms, time_s, time_us}:
--   'ok'        granted; reason '' and wait_ms 0.
--   'denied'    nothing taken; reason is the binding limit ('requests', 'input_tokens',
--               'output_tokens' or 'concurrency': the one with the longest wait) and wait_ms
--               (integer, rounded up, capped) the time until it should fit. For concurrency it
--               is the time until the earliest lease expires: an upper bound.
--   'too_large' nothing taken; the reservation exceeds the capacity of bucket `reason`, so it
--               can never fit; wait_ms is -1.
--   time_s, time_us: the server TIME the decision was made at.

local now_ms, time = server_now_ms()
local limits = parse_limits(ARGV[4], ARGV[5], ARGV[6])
local need = {requests = 1, input_tokens = tonumber(ARGV[8]), output_tokens = tonumber(ARGV[9])}

for _, name in ipairs(BUCKETS) do
  if limits[name] > 0 and need[name] > limits[name] then
    return {'too_large', name, -1, time[1], time[2]}
  end
end

local reserve = tonumber(ARGV[11]) or 0
local tokens = load_buckets(KEYS[1], limits, now_ms)
local reason, wait_ms = '', 0
for _, name in ipairs(BUCKETS) do
  local cap = limits[name]
  local want = math.min(cap, need[name] + reserve * cap)
  if cap > 0 and tokens[name] < want then
    local bucket_wait_ms = (want - tokens[name]) * 60000 / cap
    if bucket_wait_ms > wait_ms then
      reason, wait_ms = name, bucket_wait_ms
    end
  end
end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
local concurrency = tonumber(ARGV[7])
local slots = math.max(1, concurrency - math.ceil(concurrency * reserve))
if concurrency > 0 and redis.call('ZCARD', KEYS[2]) >= slots then
  local earliest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local lease_wait_ms = tonumber(earliest[2]) - now_ms
  if reason == '' or lease_wait_ms > wait_ms then
    reason, wait_ms = 'concurrency', lease_wait_ms
  end
end

if reason ~= '' then
  local capped_ms = math.max(1, math.ceil(math.min(wait_ms, tonumber(ARGV[10]))))
  return {'denied', reason, capped_ms, time[1], time[2]}
end

for _, name in ipairs(BUCKETS) do
  if limits[name] > 0 then
    tokens[name] = tokens[name] - need[name]
  end
end
save_buckets(KEYS[1], limits, tokens, now_ms)

local lease_ttl_ms = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now_ms + lease_ttl_ms, ARGV[1])
if redis.call('PTTL', KEYS[2]) < lease_ttl_ms + 1000 then
  redis.call('PEXPIRE', KEYS[2], math.ceil(lease_ttl_ms) + 1000)
end
redis.call('SET', KEYS[3], ARGV[8] .. ' ' .. ARGV[9], 'PX', ARGV[3])
return {'ok', '', 0, time[1], time[2]}

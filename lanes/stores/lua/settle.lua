-- settle.lua: end a reservation: drop its lease and correct the buckets, exactly once.
-- Prepended with bucket_lib.lua.
-- KEYS[1] limiter hash          Keys.limiter(instance, model_class)
-- KEYS[2] leases sorted set     Keys.leases(instance)
-- KEYS[3] reservation marker    Keys.reservation(instance, lease_id)
-- ARGV[1] lease id
-- ARGV[2] requests per minute        (0 = unlimited)
-- ARGV[3] input tokens per minute    (0 = unlimited)
-- ARGV[4] output tokens per minute   (0 = unlimited)
-- ARGV[5] mode: 'settle'  charge actual usage: refund (reserved - actual) per token bucket,
--                         or charge the excess when actual > reserved (may go below zero)
--               'refund'  the call never reached the provider: give back everything,
--                         the request included
--               'keep'    keep the reservation charged as it is; only drop the lease
-- ARGV[6] actual input tokens  (mode 'settle')
-- ARGV[7] actual output tokens (mode 'settle')
-- Returns {applied, time_s, time_us}: applied is 1 when this call ended the reservation, 0
-- when the marker was gone (already settled/released, or expired): then only the lease is
-- dropped and no bucket changes. time_s, time_us: the server TIME used.

local now_ms, time = server_now_ms()
redis.call('ZREM', KEYS[2], ARGV[1])
local marker = redis.call('GET', KEYS[3])
if not marker then
  return {0, time[1], time[2]}
end
redis.call('DEL', KEYS[3])

local mode = ARGV[5]
if mode == 'keep' then
  return {1, time[1], time[2]}
end

local reserved_in, reserved_out = string.match(marker, '^(%S+) (%S+)$')
local delta = {requests = 0, input_tokens = tonumber(reserved_in),
               output_tokens = tonumber(reserved_out)}
if mode == 'refund' then
  delta.requests = 1
else
  delta.input_tokens = delta.input_tokens - tonumber(ARGV[6])
  delta.output_tokens = delta.output_tokens - tonumber(ARGV[7])
end

local limits = parse_limits(ARGV[2], ARGV[3], ARGV[4])
local tokens = load_buckets(KEYS[1], limits, now_ms)
for _, name in ipairs(BUCKETS) do
  if limits[name] > 0 then
    tokens[name] = math.min(limits[name], tokens[name] + delta[name])
  end
end
save_buckets(KEYS[1], limits, tokens, now_ms)
return {1, time[1], time[2]}

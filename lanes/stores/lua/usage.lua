-- usage.lua: read-only snapshot of one (instance, model class) for `lanes status`.
-- Prepended with bucket_lib.lua. Writes nothing: expired leases are skipped, not removed.
-- KEYS[1] limiter hash          Keys.limiter(instance, model_class)
-- KEYS[2] leases sorted set     Keys.leases(instance)
-- ARGV[1] requests per minute        (0 = unlimited)
-- ARGV[2] input tokens per minute    (0 = unlimited)
-- ARGV[3] output tokens per minute   (0 = unlimited)
-- Returns {requests, input_tokens, output_tokens, leases, time_s, time_us}: tokens available
-- now per bucket as decimal strings ('' for an unlimited bucket; may be negative), leases the
-- number of unexpired leases of the instance (all model classes).

local now_ms, time = server_now_ms()
local limits = parse_limits(ARGV[1], ARGV[2], ARGV[3])
local tokens = load_buckets(KEYS[1], limits, now_ms)
local out = {}
for i, name in ipairs(BUCKETS) do
  if limits[name] > 0 then
    out[i] = string.format('%.3f', tokens[name])
  else
    out[i] = ''
  end
end
local leases = redis.call('ZCOUNT', KEYS[2], '(' .. string.format('%.3f', now_ms), '+inf')
return {out[1], out[2], out[3], leases, time[1], time[2]}

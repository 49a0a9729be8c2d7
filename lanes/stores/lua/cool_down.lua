-- cool_down.lua: start or extend an instance's cooldown; never shorten a longer one.
-- KEYS[1] cooldown key          Keys.cooldown(instance): string, value = reason, PX TTL
-- ARGV[1] cooldown length (ms, integer > 0)
-- ARGV[2] reason
-- Returns the cooldown left after the call (ms): ARGV[1] when set, or the remaining TTL of
-- the existing, longer cooldown (whose reason is kept). A key without a TTL cannot come from
-- this script and is overwritten.

local want_ms = tonumber(ARGV[1])
local left_ms = redis.call('PTTL', KEYS[1])
if left_ms >= want_ms then
  return left_ms
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', want_ms)
return want_ms

-- bucket_lib.lua: token-bucket helpers, prepended by broker/scripts.py to acquire.lua,
-- settle.lua and usage.lua (Redis has no include). Runs nothing on its own.
-- KEYS: none.  ARGV: none.  Returns: nothing (defines locals only).
--
-- The buckets of one (instance, model class) live in one hash:
--   requests, input_tokens, output_tokens  tokens left (floats; negative after a call used
--                                          more than it reserved)
--   ts_ms                                  server time (ms) of the last write
-- Capacity is the per-minute limit; refill is continuous at limit/60000 tokens per ms.
-- A missing hash or field is a full bucket, so the hash expires once every bucket would be
-- full again. A limit of 0 means unlimited: that bucket is neither checked nor stored.

local BUCKETS = {'requests', 'input_tokens', 'output_tokens'}

-- Server time in ms (float, microsecond precision) and the raw TIME reply.
local function server_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000, t
end

-- {requests=, input_tokens=, output_tokens=} per-minute limits from three ARGV strings.
local function parse_limits(rpm, itpm, otpm)
  return {requests = tonumber(rpm), input_tokens = tonumber(itpm), output_tokens = tonumber(otpm)}
end

-- Tokens in each limited bucket at now_ms after continuous refill (capped at capacity).
local function load_buckets(key, limits, now_ms)
  local raw = redis.call('HMGET', key, 'ts_ms', BUCKETS[1], BUCKETS[2], BUCKETS[3])
  local ts_ms = tonumber(raw[1])
  local tokens = {}
  for i, name in ipairs(BUCKETS) do
    local cap = limits[name]
    if cap > 0 then
      local stored = tonumber(raw[i + 1])
      if stored == nil or ts_ms == nil then
        tokens[name] = cap
      else
        local elapsed_ms = math.max(0, now_ms - ts_ms)
        tokens[name] = math.min(cap, stored + elapsed_ms * cap / 60000)
      end
    end
  end
  return tokens
end

-- Write the limited buckets (dropping unlimited ones, so a limit set again later starts full)
-- and expire the hash when all of them would be full again.
local function save_buckets(key, limits, tokens, now_ms)
  local fields = {}
  local full_in_ms = 0
  for _, name in ipairs(BUCKETS) do
    local cap = limits[name]
    if cap > 0 then
      fields[#fields + 1] = name
      fields[#fields + 1] = tokens[name]
      full_in_ms = math.max(full_in_ms, (cap - tokens[name]) * 60000 / cap)
    else
      redis.call('HDEL', key, name)
    end
  end
  if #fields == 0 then
    return
  end
  redis.call('HSET', key, 'ts_ms', now_ms, unpack(fields))
  redis.call('PEXPIRE', key, math.ceil(full_in_ms) + 1000)
end

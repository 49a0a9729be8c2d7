-- health.lua: record one call outcome in an instance's decayed success/failure weights.
-- KEYS[1] health hash           Keys.health(instance): fields ok, fail (weights decayed to
--                               ts_ms), ts_ms (server time, ms), last_failure (kind)
-- ARGV[1] outcome: 'ok' or 'fail'
-- ARGV[2] half-life of a recorded outcome (ms)
-- ARGV[3] failure kind (stored as last_failure when the outcome is 'fail')
-- ARGV[4] prior weight of successes (health = (ok + prior) / (ok + fail + prior))
-- ARGV[5] the call's latency (ms) and ARGV[6] its output tokens, for 'ok' ('' when unknown):
--         folded into the moving means lat_ms and out_tok, the newest weighing ARGV[7]
-- ARGV[8] the call's model ('' unknown): its latency also joins the mean 'lat_ms:<model>'
-- Returns the new health in [0, 1] as a decimal string. The hash expires after 20 half-lives,
-- when what it holds weighs less than a millionth: absent means health 1.0.

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local half_life_ms = tonumber(ARGV[2])
local raw = redis.call('HMGET', KEYS[1], 'ok', 'fail', 'ts_ms')
local ok_w, fail_w = tonumber(raw[1]) or 0, tonumber(raw[2]) or 0
local ts_ms = tonumber(raw[3]) or now_ms
local decay = math.pow(0.5, math.max(0, now_ms - ts_ms) / half_life_ms)
ok_w, fail_w = ok_w * decay, fail_w * decay

if ARGV[1] == 'ok' then
  ok_w = ok_w + 1
  local weight = tonumber(ARGV[7]) or 1
  local fields = {{'lat_ms', ARGV[5]}, {'out_tok', ARGV[6]}}
  if ARGV[8] and ARGV[8] ~= '' then
    fields[3] = {'lat_ms:' .. ARGV[8], ARGV[5]}
  end
  for _, pair in ipairs(fields) do
    local field, seen = pair[1], tonumber(pair[2])
    if seen then
      local mean = tonumber(redis.call('HGET', KEYS[1], field))
      redis.call('HSET', KEYS[1], field, mean and (mean + weight * (seen - mean)) or seen)
    end
  end
else
  fail_w = fail_w + 1
  redis.call('HSET', KEYS[1], 'last_failure', ARGV[3])
end
redis.call('HSET', KEYS[1], 'ok', ok_w, 'fail', fail_w, 'ts_ms', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(half_life_ms * 20))

local prior = tonumber(ARGV[4])
return string.format('%.6f', (ok_w + prior) / (ok_w + fail_w + prior))

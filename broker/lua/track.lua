-- track.lua: remember which message of a job runs next, so a lost message can be re-sent.
-- (A job's first message is tracked by submit.lua, which also claims the job id.)
-- KEYS[1] hop mark            Keys.handed_on(job_id)
-- KEYS[2] pending entries     Keys.pending()        hash: job id -> entry JSON
-- KEYS[3] pending since       Keys.pending_since()  zset: job id -> server time (s)
-- ARGV[1] job id
-- ARGV[2] hop of the message that handed the job on; -1 when the job is first submitted
-- ARGV[3] TTL of the hop mark, seconds
-- ARGV[4] entry JSON of the message that runs next: {"queue": ..., "envelope": ...}
-- Returns 1 when recorded; 0 when a later hop was already recorded (this hand-off is stale).

local hop = tonumber(ARGV[2])
if hop >= 0 then
  local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
  if hop <= current then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
local now = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[3], now[1], ARGV[1])
return 1

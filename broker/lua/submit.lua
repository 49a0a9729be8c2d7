-- submit.lua: claim a job id for one payload and track the job's first message, atomically.
-- KEYS[1] owner of the id       Keys.owner(job_id)      string: payload fingerprint
-- KEYS[2] pending entries       Keys.pending()          hash: job id -> entry JSON
-- KEYS[3] pending since         Keys.pending_since()    zset: job id -> server time (s)
-- ARGV[1] job id
-- ARGV[2] fingerprint of the job's payload (everything but its id)
-- ARGV[3] TTL of the claim, seconds
-- ARGV[4] entry JSON of the first message: {"queue": ..., "envelope": ...}
-- Returns 1: a new job, claimed and tracked; 2: this same job was submitted before (nothing
-- changes); 0: the id belongs to a job with another payload (nothing changes).

local owner = redis.call('GET', KEYS[1])
if owner then
  if owner == ARGV[2] then
    return 2
  end
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
local now = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[3], now[1], ARGV[1])
return 1

-- submit.lua: claim a job id (and the caller's idempotency key, if any) for one payload and
-- track the job's first message, atomically: a submit either holds all of them or none.
-- KEYS[1] owner of the id       Keys.owner(job_id)      string: payload fingerprint
-- KEYS[2] pending entries       Keys.pending()          hash: job id -> entry JSON
-- KEYS[3] pending since         Keys.pending_since()    zset: job id -> server time (s)
-- KEYS[4] backlog               Keys.backlog()          hash: lane -> unfinished jobs on it
-- KEYS[5] pending lanes         Keys.pending_lane()     hash: job id -> lane
-- KEYS[6] (optional) the key    Keys.idempotency(key)   string: "<job id> <fingerprint>"
-- ARGV[1] job id
-- ARGV[2] fingerprint of the job's payload (everything but its id)
-- ARGV[3] TTL of the claims, seconds
-- ARGV[4] entry JSON of the first message: {"queue": ..., "envelope": ...}
-- ARGV[5] the lane (queue) of that message
-- Returns {code, job id}. Codes: 1 a new job, claimed and tracked; 2 this same job was
-- submitted before; 0 the id belongs to a job with another payload; 3 the key is held by the
-- returned job, same payload; 4 the key is held by the returned job, another payload. Nothing
-- changes unless the code is 1.
-- Prepended with backlog_lib.lua (move_backlog).

if KEYS[6] then
  local held = redis.call('GET', KEYS[6])
  if held then
    local gap = string.find(held, ' ', 1, true)  -- ids hold no space
    local holder = string.sub(held, 1, gap - 1)
    if string.sub(held, gap + 1) == ARGV[2] then
      return {3, holder}
    end
    return {4, holder}
  end
end
local owner = redis.call('GET', KEYS[1])
if owner then
  if owner == ARGV[2] then
    return {2, ARGV[1]}
  end
  return {0, ARGV[1]}
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if KEYS[6] then
  redis.call('SET', KEYS[6], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
end
local now = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[3], now[1], ARGV[1])
move_backlog(ARGV[5])
return {1, ARGV[1]}

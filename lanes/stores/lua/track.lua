-- track.lua: a message handed its job on: remember the message that runs next, so a lost
-- message can be re-sent, and mark the handing hop stale. (A job's first message is tracked
-- by submit.lua, which also claims the job id.)
-- KEYS[1] hop mark            Keys.handed_on(job_id)
-- KEYS[2] pending entries     Keys.pending()        hash: job id -> entry JSON
-- KEYS[3] pending since       Keys.pending_since()  zset: job id -> server time (s)
-- KEYS[4] backlog               Keys.backlog()        hash: lane -> unfinished jobs on it
-- KEYS[5] pending lanes         Keys.pending_lane()   hash: job id -> lane
-- ARGV[1] job id
-- ARGV[2] hop of the message that handed the job on (0 or more)
-- ARGV[3] TTL of the hop mark, seconds
-- ARGV[4] entry JSON of the message that runs next: {"queue": ..., "envelope": ...}
-- ARGV[5] the lane (queue) of that message
-- Returns 1 when recorded; 0 when a later hop was already recorded (this hand-off is stale).
-- Prepended with backlog_lib.lua (move_backlog).

local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[2]) <= current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
local now = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[3], now[1], ARGV[1])
move_backlog(ARGV[5])
return 1

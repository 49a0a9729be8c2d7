-- forget.lua: a job ended (its result is recorded): it is no longer pending, nor in any lane's
-- backlog. Idempotent.
-- KEYS[1] (unused)
-- KEYS[2] pending entries       Keys.pending()
-- KEYS[3] pending since         Keys.pending_since()
-- KEYS[4] backlog               Keys.backlog()
-- KEYS[5] pending lanes         Keys.pending_lane()
-- ARGV[1] job id
-- Returns 1.

-- Move job ARGV[1]'s count in the backlog (KEYS[4], lane -> jobs) from the lane it was on
-- (KEYS[5], job id -> lane) to `lane`; nil: the job leaves the backlog.
local function move_backlog(lane)
  local was = redis.call('HGET', KEYS[5], ARGV[1])
  if was then
    if redis.call('HINCRBY', KEYS[4], was, -1) <= 0 then
      redis.call('HDEL', KEYS[4], was)
    end
  end
  if lane then
    redis.call('HSET', KEYS[5], ARGV[1], lane)
    redis.call('HINCRBY', KEYS[4], lane, 1)
  else
    redis.call('HDEL', KEYS[5], ARGV[1])
  end
end

redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
move_backlog(nil)
return 1

-- backlog_lib.lua: prepended to the scripts that change what is pending (submit, track, untrack,
-- forget), whose KEYS[4] is the backlog (Keys.backlog(): lane -> unfinished jobs on it) and
-- KEYS[5] each pending job's lane (Keys.pending_lane()), and whose ARGV[1] is the job id.

-- Move job ARGV[1]'s count in the backlog from the lane it was on to `lane`; nil: the job
-- leaves the backlog.
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

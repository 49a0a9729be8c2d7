-- untrack.lua: give back what a submit that never reached a queue claimed (submit.lua), at once.
-- KEYS[1] owner of the id       Keys.owner(job_id)
-- KEYS[2] pending entries       Keys.pending()
-- KEYS[3] pending since         Keys.pending_since()
-- KEYS[4] backlog               Keys.backlog()
-- KEYS[5] pending lanes         Keys.pending_lane()
-- KEYS[6] (optional) the key    Keys.idempotency(key): dropped only while this job holds it
-- ARGV[1] job id
-- Returns 1.
-- Prepended with backlog_lib.lua (move_backlog).

redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1])
move_backlog(nil)
if KEYS[6] then
  local held = redis.call('GET', KEYS[6])
  if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
    redis.call('DEL', KEYS[6])
  end
end
return 1

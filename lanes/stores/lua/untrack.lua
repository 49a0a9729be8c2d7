-- untrack.lua: give back what a submit that never reached a queue claimed (submit.lua), at once.
-- KEYS[1] owner of the id       Keys.owner(job_id)
-- KEYS[2] pending entries       Keys.pending()
-- KEYS[3] pending since         Keys.pending_since()
-- KEYS[4] (optional) the key    Keys.idempotency(key): dropped only while this job holds it
-- ARGV[1] job id
-- Returns 1.

redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1])
if KEYS[4] then
  local held = redis.call('GET', KEYS[4])
  if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
    redis.call('DEL', KEYS[4])
  end
end
return 1

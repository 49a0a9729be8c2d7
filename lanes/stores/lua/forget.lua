-- forget.lua: a job ended (its result is recorded): it is no longer pending, nor in any lane's
-- backlog. Idempotent.
-- KEYS[1] (unused)
-- KEYS[2] pending entries       Keys.pending()
-- KEYS[3] pending since         Keys.pending_since()
-- KEYS[4] backlog               Keys.backlog()
-- KEYS[5] pending lanes         Keys.pending_lane()
-- ARGV[1] job id
-- Returns 1.
-- Prepended with backlog_lib.lua (move_backlog).

redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
move_backlog(nil)
return 1

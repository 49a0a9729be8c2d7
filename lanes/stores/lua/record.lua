-- record.lua: store a job's one result where Celery's result backend reads it, and wake waiters.
-- KEYS[1] result key            Keys.result(job_id)  (Celery's "<prefix>:celery:celery-task-meta-<id>")
-- ARGV[1] task meta JSON        {"status": "SUCCESS", "result": {...}, "task_id": ...}
-- ARGV[2] TTL, seconds
-- ARGV[3] "1": publish now; "0": the caller publishes once a replica holds the result
-- Returns 1 when this result was stored (and published, or to be); 0 when the job already had
-- one (the earlier result stands and nothing is published: waiters already got it).

if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if ARGV[3] == '1' then
    redis.call('PUBLISH', KEYS[1], ARGV[1])
  end
  return 1
end
return 0

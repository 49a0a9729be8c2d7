-- budget_release.lua: a job ended with no call to settle (it failed before calling, or its
-- submit was undone): drop its reservation. Idempotent.
-- KEYS[1] reservation record    Keys.budget_reservation(job_id) (see budget_reserve.lua)
-- ARGV[1] record TTL (s), for a record that must stay for orphaned calls
-- Returns 0 when there was nothing to release (no record, or an ended one), 1 when the
-- estimate left reserved on the held counters, 2 when a call was still running: it may have
-- been billed, so its estimate moved to spent instead, and the record stays ended (field
-- done) knowing the orphan (o:<call>) so that a late settle corrects only the difference.
-- Sharp edge: the held counters are read from the record, not passed in KEYS (see
-- budget_start.lua); every budget key shares the {budget} hash tag.

local rec = redis.call('HMGET', KEYS[1], 'est', 'held', 'call', 'orphans', 'done')
if not rec[2] or rec[5] then
  return 0
end

local est, running = tonumber(rec[1]), rec[3] or ''
for _, entry in ipairs(cjson.decode(rec[2])) do
  bump(entry[1], 'reserved', -est)
  if running ~= '' then
    bump(entry[1], 'spent', est)
  end
  redis.call('EXPIREAT', entry[1], entry[2])
end

local orphans = tonumber(rec[4]) or 0
if running ~= '' then
  redis.call('HSET', KEYS[1], 'o:' .. running, rec[1])
  orphans = orphans + 1
end
if orphans > 0 then
  redis.call('HSET', KEYS[1], 'done', 1, 'est', 0, 'call', '', 'orphans', orphans)
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return running ~= '' and 2 or 1
end
redis.call('DEL', KEYS[1])
return 1

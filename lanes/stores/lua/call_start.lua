-- call_start.lua: number a provider call and hand its ledger event off, in one round trip.
-- KEYS[1] calls hash            Keys.calls(job_id)
-- KEYS[2] ledger events list    Keys.ledger_events()
-- KEYS[3] cancel mark           Keys.cancelled(job_id)
-- ARGV[1] field                 "<step>:<attempt>"
-- ARGV[2] TTL of the hash, seconds
-- ARGV[3] the CallEvent as JSON without its number, or "" to hand nothing off
-- Returns the call's number: 1 for the first call of that step and attempt, 2 for a call
-- repeated after its worker died mid-call, and so on; 0 when the caller cancelled the job
-- (nothing is numbered or handed off, and no call may start).

if redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  local event = cjson.decode(ARGV[3])
  event['call'] = n
  redis.call('RPUSH', KEYS[2], cjson.encode(event))
end
return n

-- call_start.lua: number a provider call and hand its ledger event off, in one round trip.
-- KEYS[1] calls hash            Keys.calls(job_id)
-- KEYS[2] ledger events list    Keys.ledger_events()
-- ARGV[1] field                 "<step>:<attempt>"
-- ARGV[2] TTL of the hash, seconds
-- ARGV[3] the CallEvent as JSON without its number, or "" to hand nothing off
-- Returns the call's number: 1 for the first call of that step and attempt, 2 for a call
-- repeated after its worker died mid-call, and so on.

local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  local event = cjson.decode(ARGV[3])
  event['call'] = n
  redis.call('RPUSH', KEYS[2], cjson.encode(event))
end
return n

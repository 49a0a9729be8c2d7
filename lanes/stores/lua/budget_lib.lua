-- budget_lib.lua: prepended to the budget scripts that move amounts between counters
-- (budget_start, budget_settle, budget_release) by broker/scripts.py; not a script of its own.
-- bump(key, field, delta): add delta (nano-USD, integer) to a counter field, never below 0.

local function bump(key, field, delta)
  if delta ~= 0 then
    local value = redis.call('HINCRBY', key, field, string.format('%d', delta))
    if value < 0 then
      redis.call('HSET', key, field, 0)
    end
  end
end

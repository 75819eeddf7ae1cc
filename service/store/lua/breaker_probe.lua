-- KEYS: the breaker. ARGV: now, probe seconds. Returns 1 when this caller may probe.
local now = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'opened', 'probe')
if not state[1] or tonumber(state[1]) > now then return 0 end
if state[2] and tonumber(state[2]) > now then return 0 end
redis.call('HSET', KEYS[1], 'probe', tostring(now + tonumber(ARGV[2])))
return 1

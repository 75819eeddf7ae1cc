-- KEYS: the breaker. ARGV: succeeded (1/0), now, failures to open, open seconds, window seconds.
-- Returns {failures, opened_until or '', probe_until or ''}.
if ARGV[1] == '1' then
    redis.call('DEL', KEYS[1])
    return {0, '', ''}
end
local now, threshold = tonumber(ARGV[2]), tonumber(ARGV[3])
local open_seconds, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'failures', 'first', 'opened')
local failures, first, opened = tonumber(state[1] or '0'), tonumber(state[2] or ARGV[2]), state[3]
if now - first > window and not opened then
    failures, first = 0, now
end
failures = failures + 1
if opened or failures >= threshold then
    opened = tostring(now + open_seconds)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'failures', failures, 'first', first)
if opened then redis.call('HSET', KEYS[1], 'opened', opened) end
redis.call('EXPIRE', KEYS[1], math.ceil(window + open_seconds) + 60)
return {failures, opened or '', ''}

-- KEYS: the breaker. ARGV: succeeded (1/0), now, failures to open, open seconds, window seconds,
-- callers needed, the caller ('' for none). Returns {failures, opened_until or '', probe_until or '',
-- callers joined by ',', since}. The twin of breaker_after_failure (service/store/contract.py).
if ARGV[1] == '1' then
    redis.call('DEL', KEYS[1])
    return {0, '', '', '', ''}
end
local now, threshold = tonumber(ARGV[2]), tonumber(ARGV[3])
local open_seconds, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local needed, caller = tonumber(ARGV[6]), ARGV[7]
local state = redis.call('HMGET', KEYS[1], 'failures', 'first', 'opened', 'callers')
local failures, first, opened = tonumber(state[1] or '0'), tonumber(state[2] or ARGV[2]), state[3]
local callers = {}
if state[4] and state[4] ~= '' then
    for name in string.gmatch(state[4], '[^,]+') do table.insert(callers, name) end
end
if now - first > window and not opened then
    failures, first, callers = 0, now, {}
end
failures = failures + 1
if caller ~= '' then
    local known = false
    for _, name in ipairs(callers) do if name == caller then known = true end end
    if not known then table.insert(callers, caller) end
end
local enough_callers = caller == '' or #callers >= needed
if enough_callers and (opened or failures >= threshold) then
    opened, callers = tostring(now + open_seconds), {}
end
if opened then first = now end
local joined = table.concat(callers, ',')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'failures', failures, 'first', first, 'callers', joined)
if opened then redis.call('HSET', KEYS[1], 'opened', opened) end
redis.call('EXPIRE', KEYS[1], math.ceil(window + open_seconds) + 60)
return {failures, opened or '', '', joined, tostring(first)}

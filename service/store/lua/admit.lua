-- KEYS: the key's window (requests per second of the clock), its lease set, then one quota counter per claim.
-- ARGV: now, window limit (0: none), window seconds, lease id ('': none), lease limit,
--       lease expiry, quota ttl, then name, amount, limit per claim.
-- Returns {} when admitted, else {policy, seconds until trying again can succeed}.
local now = tonumber(ARGV[1])
local window_limit = tonumber(ARGV[2])
local window_seconds = tonumber(ARGV[3])
local lease = ARGV[4]
if window_limit > 0 then
    local counts = redis.call('HGETALL', KEYS[1])
    local total, oldest = 0, nil
    for i = 1, #counts, 2 do
        local second = tonumber(counts[i])
        if second + window_seconds + 1 <= now then
            redis.call('HDEL', KEYS[1], counts[i])
        else
            total = total + tonumber(counts[i + 1])
            if oldest == nil or second < oldest then oldest = second end
        end
    end
    if total >= window_limit then
        return {'rpm', tostring(oldest + window_seconds + 1 - now)}
    end
end
if lease ~= '' then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
        return {'concurrency', ''}
    end
end
local claims = (#ARGV - 7) / 3
for i = 1, claims do
    local used = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
    if used + tonumber(ARGV[7 + 3 * i - 1]) > tonumber(ARGV[7 + 3 * i]) then
        return {ARGV[7 + 3 * i - 2], ''}
    end
end
if window_limit > 0 then
    redis.call('HINCRBY', KEYS[1], math.floor(now), 1)
    redis.call('EXPIRE', KEYS[1], window_seconds + 2)
end
if lease ~= '' then
    redis.call('ZADD', KEYS[2], tonumber(ARGV[6]), lease)
    redis.call('EXPIREAT', KEYS[2], math.ceil(tonumber(ARGV[6])) + 1)
end
for i = 1, claims do
    redis.call('INCRBY', KEYS[2 + i], tonumber(ARGV[7 + 3 * i - 1]))
    redis.call('EXPIRE', KEYS[2 + i], tonumber(ARGV[7]))
end
return {}

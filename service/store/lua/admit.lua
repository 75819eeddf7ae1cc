-- KEYS: the key's window (requests per second of the clock), its lease set, every lease's expiry
--       and every lease's record (book_lease.lua), then one quota counter per claim.
-- ARGV: now, window limit (0: none), window seconds, lease id ('': none), lease limit (0: none),
--       lease expiry, quota ttl, the keys' prefix, the lease's member and record, leases to
--       book at most, then name, amount, limit per claim.
-- Returns, when admitted, what was counted before this request: {'', requests in the window,
-- its oldest second, leases held, then each claim's used} ('' where there is no such limit);
-- else {policy, seconds until trying again can succeed, used}.
local now = tonumber(ARGV[1])
local window_limit = tonumber(ARGV[2])
local window_seconds = tonumber(ARGV[3])
local lease = ARGV[4]
local CLAIMS_AT = 11
local counted = {'', '', '', ''}
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
        return {'rpm', tostring(oldest + window_seconds + 1 - now), ''}
    end
    counted[2] = tostring(total)
    counted[3] = oldest and tostring(oldest) or ''
end
if lease ~= '' then
    book_expired(KEYS[4], KEYS[3], ARGV[8], now, tonumber(ARGV[11]))
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    local limit = tonumber(ARGV[5])
    if limit > 0 then
        local held = redis.call('ZCARD', KEYS[2])
        if held >= limit then
            return {'concurrency', '', ''}
        end
        counted[4] = tostring(held)
    end
end
local claims = (#ARGV - CLAIMS_AT) / 3
for i = 1, claims do
    local used = tonumber(redis.call('GET', KEYS[4 + i]) or '0')
    if used + tonumber(ARGV[CLAIMS_AT + 3 * i - 1]) > tonumber(ARGV[CLAIMS_AT + 3 * i]) then
        return {ARGV[CLAIMS_AT + 3 * i - 2], '', tostring(used)}
    end
    counted[4 + i] = tostring(used)
end
if window_limit > 0 then
    redis.call('HINCRBY', KEYS[1], math.floor(now), 1)
    redis.call('EXPIRE', KEYS[1], window_seconds + 2)
end
if lease ~= '' then
    local expires = tonumber(ARGV[6])
    redis.call('ZADD', KEYS[2], expires, lease)
    redis.call('ZADD', KEYS[3], expires, ARGV[9])
    redis.call('HSET', KEYS[4], ARGV[9], ARGV[10])
    -- The set lives as long as its longest lease: a short request never shortens a long one's.
    local longest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
    redis.call('EXPIREAT', KEYS[2], math.ceil(tonumber(longest)) + 1)
end
for i = 1, claims do
    redis.call('INCRBY', KEYS[4 + i], tonumber(ARGV[CLAIMS_AT + 3 * i - 1]))
    redis.call('EXPIRE', KEYS[4 + i], tonumber(ARGV[7]))
end
return counted

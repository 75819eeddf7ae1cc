-- KEYS: the entry, the index (member -> expiry), the sizes (member -> bytes), the byte total.
-- ARGV: member, value, now, ttl seconds, max entries, max bytes, the entries' key prefix.
local member, value, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local max_entries, max_bytes, prefix = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local function drop(m)
    local size = tonumber(redis.call('HGET', KEYS[3], m) or '0')
    redis.call('HDEL', KEYS[3], m)
    redis.call('ZREM', KEYS[2], m)
    redis.call('DEL', prefix .. m)
    redis.call('DECRBY', KEYS[4], size)
end
drop(member)
redis.call('SET', KEYS[1], value, 'PX', math.floor(ttl * 1000))
redis.call('ZADD', KEYS[2], now + ttl, member)
redis.call('HSET', KEYS[3], member, #value)
redis.call('INCRBY', KEYS[4], #value)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do drop(m) end
while redis.call('ZCARD', KEYS[2]) > max_entries or tonumber(redis.call('GET', KEYS[4]) or '0') > max_bytes do
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
    if not oldest then break end
    drop(oldest)
end
return 1

-- Shared by the scripts that end leases (prepended to admit, settle and sweep): book one lease
-- that ended unsettled, its request cut off, in the ledger as its record says, and forget it.
-- A lease's record (in the bookings hash, under "<key>\31<lease id>") is JSON: its holder and,
-- when it has one, the row to book: day, model and counts.
local SEPARATOR = '\31'

local function book_lease(bookings, expiries, prefix, member)
    local at = string.find(member, SEPARATOR, 1, true)
    if not at then return 0 end
    local key, lease = string.sub(member, 1, at - 1), string.sub(member, at + 1)
    local record = redis.call('HGET', bookings, member)
    redis.call('HDEL', bookings, member)
    redis.call('ZREM', expiries, member)
    redis.call('ZREM', prefix .. 'leases:' .. key, lease)
    if not record then return 0 end
    local entry = cjson.decode(record)
    if type(entry.counts) == 'table' then
        local ledger = prefix .. 'usage:' .. entry.day
        for name, value in pairs(entry.counts) do
            redis.call('HINCRBYFLOAT', ledger, key .. SEPARATOR .. entry.model .. SEPARATOR .. name, value)
        end
    end
    return 1
end

-- Book every lease of any key whose expiry has passed, at most `limit` of them.
local function book_expired(bookings, expiries, prefix, now, limit)
    local booked = 0
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, limit)) do
        booked = booked + book_lease(bookings, expiries, prefix, member)
    end
    return booked
end

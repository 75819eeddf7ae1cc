-- KEYS: the key's lease set, every lease's expiry, every lease's record, then one quota counter
--       per refund, then one ledger hash per carried row, then one per row of the request.
-- ARGV: lease id ('': none), the lease's member, refunds, carried rows, rows, then an amount per
--       refund, then per row (carried first) its number of fields and field, value pairs.
-- The refunds and the request's rows count only while its lease is held: a lease already booked
-- as cut off (book_lease.lua) counted the request. A refund never takes a counter below zero.
local held = true
if ARGV[1] ~= '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[2])
    held = redis.call('HDEL', KEYS[3], ARGV[2]) == 1
end
local refunds, carried, rows = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local at = 6
for i = 1, refunds do
    if held and redis.call('DECRBY', KEYS[3 + i], tonumber(ARGV[at])) < 0 then
        redis.call('SET', KEYS[3 + i], 0, 'KEEPTTL')
    end
    at = at + 1
end
for row = 1, carried + rows do
    local fields = tonumber(ARGV[at])
    at = at + 1
    for f = 1, fields do
        if held or row <= carried then
            redis.call('HINCRBYFLOAT', KEYS[3 + refunds + row], ARGV[at], ARGV[at + 1])
        end
        at = at + 2
    end
end
return 1

-- KEYS: the key's lease set, then one quota counter per refund, then one ledger hash per row.
-- ARGV: lease id ('': none), refunds, rows, then an amount per refund, then per row its
--       number of fields and field, value pairs. A refund never takes a counter below zero.
if ARGV[1] ~= '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
end
local refunds, rows = tonumber(ARGV[2]), tonumber(ARGV[3])
local at = 4
for i = 1, refunds do
    if redis.call('DECRBY', KEYS[1 + i], tonumber(ARGV[at])) < 0 then
        redis.call('SET', KEYS[1 + i], 0, 'KEEPTTL')
    end
    at = at + 1
end
for row = 1, rows do
    local fields = tonumber(ARGV[at])
    at = at + 1
    for f = 1, fields do
        redis.call('HINCRBYFLOAT', KEYS[1 + refunds + row], ARGV[at], ARGV[at + 1])
        at = at + 2
    end
end
return 1

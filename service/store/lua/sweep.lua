-- KEYS: every lease's expiry, every lease's record (book_lease.lua).
-- ARGV: now, the keys' prefix, leases to book at most, then the members of leases whose holder
--       is gone (each booked if still held).
-- Returns how many leases were booked.
local booked = 0
for i = 4, #ARGV do
    booked = booked + book_lease(KEYS[2], KEYS[1], ARGV[2], ARGV[i])
end
return booked + book_expired(KEYS[2], KEYS[1], ARGV[2], tonumber(ARGV[1]), tonumber(ARGV[3]))

-- renewLeases: extends every lease still held, in one round trip.
-- KEYS: store keys, then one job hash per lease.
-- ARGV: now, leaseMs, then per lease (in KEYS order) its job id and token.
-- Returns {lost job ids, ids of held jobs whose cancellation was requested}.
local now, leaseMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local LEASES_FROM = 3
local expiresAt = now + leaseMs

local lost, cancelRequested = {}, {}
for i = 1, #KEYS - STORE_KEY_COUNT do
  local key = KEYS[STORE_KEY_COUNT + i]
  local id = ARGV[LEASES_FROM + 2 * (i - 1)]
  local token = ARGV[LEASES_FROM + 2 * (i - 1) + 1]
  local job = leasedJob(key, token)
  if job then
    redis.call('HSET', key, 'leaseExpiresAt', expiresAt)
    redis.call('ZADD', LEASES, expiresAt, id)
    if job.cancelRequested == '1' then cancelRequested[#cancelRequested + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return { lost, cancelRequested }
